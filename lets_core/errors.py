"""Exception types. All derive from ValueError so ``except ValueError`` catches bad user input."""


class _FieldError(ValueError):
    """A ValueError that may name the configuration fields it is about (``fields``), so that a
    caller can point at its own spelling of them (a command-line flag) without reading the text."""

    def __init__(self, *args: object, fields: tuple[str, ...] = ()) -> None:
        super().__init__(*args)
        self.fields = tuple(fields)


class LetsConfigError(_FieldError):
    """A configuration value is outside what the LeTs method can build."""


class DesSizeError(_FieldError):
    """A requested Des-Net size, strategy or depth plan is not one the bundle can produce."""


class StrategyWarning(UserWarning):
    """A Des-Net emitted with another selection strategy than the one its Aux-Net's elastic stage 1
    trained Des-Nets with: it keeps neurons that were never trained together as a set."""


class BundleError(ValueError):
    """A saved bundle or checkpoint is missing, corrupted, or does not match its configuration."""
