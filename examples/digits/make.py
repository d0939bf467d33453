"""Make the bundled example: a small Keras 3 CNN trained on scikit-learn's digits (offline data).

Writes ``model.keras`` (float) and ``val.npz`` (held-out ``x``, ``y``) beside this file. Deterministic
for a given seed; takes a few seconds on a laptop CPU.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np


def digits_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_val, y_val): 8x8x1 float32 images in [0, 1], int64 labels, 80/20 split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    cut = int(0.8 * len(x))
    return x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]


def build_and_train(x: np.ndarray, y: np.ndarray, seed: int = 0, epochs: int = 15) -> object:
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 1), name="image")
    h = keras.layers.Conv2D(16, 3, padding="same")(inputs)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.ReLU()(h)
    h = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(h)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    h = keras.layers.Dense(32, activation="relu")(h)
    outputs = keras.layers.Dense(10, activation="softmax", name="probs")(h)
    model = keras.Model(inputs, outputs, name="digits_cnn")
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args()
    x_train, y_train, x_val, y_val = digits_split(args.seed)
    model = build_and_train(x_train, y_train, args.seed, args.epochs)
    args.out.mkdir(parents=True, exist_ok=True)
    import keras

    # Ship the graph and weights only: no optimizer state, a quarter of the size.
    bare = keras.models.clone_model(model)
    bare.set_weights(model.get_weights())  # type: ignore[attr-defined]
    bare.save(args.out / "model.keras")
    np.savez_compressed(args.out / "val.npz", x=x_val, y=y_val)
    np.savez_compressed(args.out / "train.npz", x=x_train, y=y_train)
    _, acc = model.evaluate(x_val, y_val, verbose=0)  # type: ignore[attr-defined]
    print(f"wrote {args.out / 'model.keras'}: validation accuracy {acc:.4f} on {len(x_val)} samples")


if __name__ == "__main__":
    main()
