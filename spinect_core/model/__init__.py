"""The 3D U-Net, its model card and its weights files (safetensors + JSON; never pickles).

Typical use::

    from spinect_core.model import load_weights
    loaded = load_weights("my.safetensors")        # checked, eval mode, float32
    probs = loaded.model.predict_proba(x)           # x: (B, 1, D, H, W) = (batch, channel, z, y, x)
"""

from spinect_core.model.card import (
    CARD_FORMAT_VERSION,
    DEFAULT_INTENDED_USE,
    NORMALISATION_REQUIRED_KEYS,
    TENSOR_DTYPES,
    ModelCard,
)
from spinect_core.model.unet import UNet3D, UNetConfig
from spinect_core.model.weights import (
    LoadedModel,
    card_path_for,
    default_weights_path,
    load_default_weights,
    load_weights,
    read_model_card,
    save_weights,
)

__all__ = [
    "CARD_FORMAT_VERSION", "DEFAULT_INTENDED_USE", "NORMALISATION_REQUIRED_KEYS", "TENSOR_DTYPES",
    "ModelCard", "UNet3D", "UNetConfig",
    "LoadedModel", "card_path_for", "default_weights_path", "load_default_weights", "load_weights",
    "read_model_card", "save_weights",
]
