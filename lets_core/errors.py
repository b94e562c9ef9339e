"""Exception types. All derive from ValueError so ``except ValueError`` catches bad user input."""


class LetsConfigError(ValueError):
    """A configuration value is outside what the LeTs method can build."""


class DesSizeError(ValueError):
    """A requested Des-Net size, strategy or depth plan is not one the bundle can produce."""


class BundleError(ValueError):
    """A saved bundle or checkpoint is missing, corrupted, or does not match its configuration."""
