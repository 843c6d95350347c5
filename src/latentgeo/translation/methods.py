"""The vocabulary of latent space translation: its methods, pre-processings and what each needs.

A leaf module (no numerical code, no imports of the project's), so that the profile schema can
name the allowed values without depending on the fitting code: a change to
:mod:`latentgeo.translation.translate` reruns the stitching stage only. What each method computes
is in that module's docstring.
"""

from __future__ import annotations

# Translation methods (METHOD_FITS says how each is fitted): `affine` is the
# closed-form least squares with bias, `affine-sgd` the translation library's Adam training.
TRANSLATION_METHODS = (
    "ortho", "linear", "linear-ridge", "lortho", "affine", "affine-ridge", "affine-sgd", "mlp"
)
PREPROCESSING = ("none", "center", "standard", "l2")
# Ridge's λ is chosen by K-fold cross-validation on the anchors.
RIDGE_FOLDS = 5
# Minimum anchors each method needs: N−1 std needs 2; ridge one row per fold; the MLP holds some
# out for early stopping.
MIN_ANCHORS = {
    "ortho": 2, "linear": 2, "linear-ridge": RIDGE_FOLDS, "lortho": 2, "affine": 2,
    "affine-ridge": RIDGE_FOLDS, "affine-sgd": 2, "mlp": 10,
}
RIDGE_METHODS = ("linear-ridge", "affine-ridge")

# How each method is fitted: for tables, figure legends and the metrics records. ``affine`` (our
# closed form) and ``affine-sgd`` (the library's Adam training) are the same model fitted two ways.
METHOD_FITS = {
    "ortho": "closed form: orthogonal Procrustes (SVD)",
    "linear": "closed form: least squares, no bias",
    "linear-ridge": f"closed form: ridge, no bias, λ by {RIDGE_FOLDS}-fold CV",
    "lortho": "closed form: least squares, then nearest orthogonal",
    "affine": "closed form: least squares with bias",
    "affine-ridge": f"closed form: ridge, unpenalised bias, λ by {RIDGE_FOLDS}-fold CV",
    "affine-sgd": "gradient descent: Adam lr 1e-3, 300 steps (latentis)",
    "mlp": "gradient descent: ReLU MLP, Adam, early stopping",
}
# The same, short enough for a figure panel's title or a legend entry.
METHOD_LABELS = {
    "ortho": "ortho (Procrustes)",
    "linear": "linear (LS)",
    "linear-ridge": "linear-ridge (CV λ)",
    "lortho": "lortho (LS → orth.)",
    "affine": "affine (LS + bias)",
    "affine-ridge": "affine-ridge (CV λ)",
    "affine-sgd": "affine-sgd (Adam ×300)",
    "mlp": "mlp (Adam)",
}
