"""Whether the data fits the model: classes, channels and image size, checked before training or
evaluating so that a mismatch is named rather than surfacing deep inside timm."""

from __future__ import annotations


def check_des_fits(model, splits, what: str) -> None:
    model_args = getattr(model, "lets_model_args", {})
    check_fits(what, splits, model_args.get("num_classes"), model_args.get("in_chans"), model_args.get("img_size"))


def check_fits(what: str, splits, num_classes: int | None, in_chans: int | None, img_size: int | None = None) -> None:
    """Refuse data the model cannot take (None: not checked), naming both sides; otherwise the
    mismatch surfaces as an IndexError of the loss or a shape assertion deep inside timm."""
    pairs = (("{} classes", num_classes, splits.num_classes), ("{} channels", in_chans, splits.in_chans),
             ("{} px images", img_size, splits.image_size))
    bad = [(form.format(want), form.format(have)) for form, want, have in pairs if want is not None and want != have]
    if bad:
        want, have = (", ".join(side) for side in zip(*bad))
        raise ValueError(f"{what} takes {want} but the data has {have}; use data with the model's classes, and "
                         "--channels / --image-size matching the model")
