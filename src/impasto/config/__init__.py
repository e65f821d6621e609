"""Every option of a transfer, with its default, type, allowed choices and help, in one place.

The command line, the API and the web server are all built from :class:`TransferConfig`: argparse
flags are generated from the fields' metadata (``cli/options.py``), the server describes and
checks job options from them (``serve/intake.py``), and ``impasto.stylize(**options)`` passes its
keywords straight to the dataclass, whose ``__post_init__`` validates them. Changing a default
here changes it everywhere.

The package is cut along its concerns: ``transfer`` holds the options themselves (adding an
option is adding a field there), ``fields`` the ``option()`` field they are made with,
``choices`` the Literal types of the options with a fixed few values, ``limits`` the numeric
ranges, ``presets`` what options left alone become, and ``helptext`` how an option is described.
Every name is imported from here.
"""

from .choices import (
    ContentLoss,
    Device,
    InitKind,
    MaskPropagation,
    Optimizer,
    Pooling,
    Precision,
    PreserveColors,
    Preset,
    StyleLoss,
    check_choices,
)
from .fields import Place, option, type_hints
from .helptext import OPTION_GROUPS, help_text, short_number, show_value, shown_default
from .limits import (
    MAX_ITERATIONS,
    MAX_LEARNING_RATE,
    MAX_MEMORY_GIB,
    MAX_SEED,
    MAX_SIZE,
    MAX_STAGES,
    MAX_STYLE_SCALE,
    MAX_WEIGHT,
    POSITIVE,
    TOO_SMALL,
    check_bounds,
)
from .presets import (
    COARSE_TO_FINE_ABOVE,
    DEFAULT_STYLE_WEIGHT_512,
    NORMALIZED_STYLE_WEIGHT,
    PAPER_STYLE_LAYERS,
    PRESETS,
    STYLE_WEIGHT,
    TV_WEIGHT,
    Auto,
    AutoInt,
    AutoScales,
    AutoStr,
    AutoWeight,
    scale_schedule,
)
from .transfer import TransferConfig, choices

__all__ = [
    "COARSE_TO_FINE_ABOVE",
    "DEFAULT_STYLE_WEIGHT_512",
    "MAX_ITERATIONS",
    "MAX_LEARNING_RATE",
    "MAX_MEMORY_GIB",
    "MAX_SEED",
    "MAX_SIZE",
    "MAX_STAGES",
    "MAX_STYLE_SCALE",
    "MAX_WEIGHT",
    "NORMALIZED_STYLE_WEIGHT",
    "OPTION_GROUPS",
    "PAPER_STYLE_LAYERS",
    "POSITIVE",
    "PRESETS",
    "STYLE_WEIGHT",
    "TOO_SMALL",
    "TV_WEIGHT",
    "Auto",
    "AutoInt",
    "AutoScales",
    "AutoStr",
    "AutoWeight",
    "ContentLoss",
    "Device",
    "InitKind",
    "MaskPropagation",
    "Optimizer",
    "Place",
    "Pooling",
    "Precision",
    "PreserveColors",
    "Preset",
    "StyleLoss",
    "TransferConfig",
    "check_bounds",
    "check_choices",
    "choices",
    "help_text",
    "option",
    "scale_schedule",
    "short_number",
    "show_value",
    "shown_default",
    "type_hints",
]
