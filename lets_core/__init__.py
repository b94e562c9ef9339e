"""lets_core: initialize Vision Transformers of many sizes from one learngene (LeTs, NeurIPS 2024).

Stage 1 trains an :class:`AuxNet` whose weights are generated from a compact learngene through
learnable width (F) and depth (G) transformations; stage 2 emits Des-Nets of any size in between
as plain timm models with :func:`emit_des`.
"""

from . import ops, presets
from .auxnet import AuxNet
from .bundle import load_bundle, save_bundle
from .config import LearngeneConfig, LetsConfig, TransformConfig
from .depth_plan import auto_depth_plan
from .des import des_param_count, emit_des, load_des, save_des
from .des_family import emit_des_many
from .storage import StorageReport, storage_report
from ._extension import extension_info
from .data.errors import DatasetError, DatasetNotFoundError
from .errors import BundleError, DesSizeError, LetsConfigError, StrategyWarning
from .input_norm import InputNorm, record_input_norm, recorded_input_norm
from .train.checkpoint import CheckpointError
from .learngene import Learngene
from .selection import STRATEGIES

__version__ = "0.1.0"

__all__ = [
    "AuxNet", "BundleError", "CheckpointError", "DatasetError", "DatasetNotFoundError", "DesSizeError", "InputNorm", "Learngene", "LearngeneConfig", "LetsConfig",
    "LetsConfigError", "STRATEGIES", "StorageReport", "StrategyWarning", "TransformConfig", "auto_depth_plan",
    "des_param_count", "emit_des", "emit_des_many", "extension_info", "load_bundle", "load_des", "ops", "presets", "save_bundle", "save_des",
    "record_input_norm", "recorded_input_norm", "storage_report",
]
