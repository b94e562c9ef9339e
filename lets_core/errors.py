"""Exception types. All derive from ValueError so ``except ValueError`` catches bad user input."""


class LetsConfigError(ValueError):
    """A configuration value is outside what the LeTs method can build."""


class DesSizeError(ValueError):
    """A requested Des-Net size, strategy or depth plan is not one the bundle can produce."""


class StrategyWarning(UserWarning):
    """A Des-Net emitted with another selection strategy than the one its Aux-Net's elastic stage 1
    trained Des-Nets with: it keeps neurons that were never trained together as a set."""


class BundleError(ValueError):
    """A saved bundle or checkpoint is missing, corrupted, or does not match its configuration."""
