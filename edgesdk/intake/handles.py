"""Model handles: one per input form, each able to give its float .tflite (cached) and, where it has
one, its Keras graph. Techniques declare the forms they accept (:class:`edgesdk.kinds.ModelForm`); a
handle names its own, and why, when one refuses it."""

from __future__ import annotations

import abc
from typing import Any

from ..errors import ModelError, RecipeError
from ..kinds import ModelForm
from .source import TRUST_FLAG, ModelSource, code_layers, load_keras, refuse_code


class ModelHandle(abc.ABC):
    """A model the user handed us, and what it can give the pipeline."""

    def __init__(self, source: ModelSource, trust_code: bool = False) -> None:
        self.source = source
        self.trust_code = trust_code
        self._float: bytes | None = None
        self.changes: list[str] = []     # what normalizing the model changed (a .tflite's)
        self.custom_ops: list[str] = []  # custom operators a .tflite holds
        self.fp16_weights = False        # a .tflite that stores weights as fp16 (MediaPipe's): outputs keep that

    @property
    def own_precision(self) -> str | None:
        """The conversion step a recipe that names none means for this model (None: the default, fp32):
        an integer .tflite keeps int8, a .tflite with fp16 weights keeps fp16."""
        return None

    @property
    @abc.abstractmethod
    def form(self) -> ModelForm:
        """The richest form this model offers a technique (a Keras graph > a SavedModel graph > a .tflite)."""

    def check_code(self) -> None:
        """Refuse the model, before any work, if opening it would run Python code it carries (without
        ``--trust-model-code``). Formats that hold no code, or that fall back to a graph that runs none,
        refuse nothing.

        Raises:
            ModelError: the layers that carry code, and the flag.
        """
        return None

    def why(self) -> str:
        """Why the model is in this form and not a richer one (shown when a technique refuses it)."""
        return f"a {self.form.value} model"

    @abc.abstractmethod
    def converter_source(self) -> Any:
        """What the TFLite converter is built from: a tf_keras model or a SavedModel directory.

        Raises:
            RecipeError: the model has no graph to convert (a .tflite).
        """

    def keras(self) -> Any:
        """The tf_keras model.

        Raises:
            RecipeError: the model has none (naming why).
        """
        raise RecipeError(f"{self.source.path}: no Keras model: {self.why()}")

    def float_tflite(self) -> bytes:
        """The model as a float32 .tflite, converted once."""
        if self._float is None:
            from ..techniques.conversion import float_tflite

            self._float = float_tflite(self.converter_source())
        return self._float

    def as_given(self) -> bytes:
        """The model as a .tflite described as the user gave it (a source converted to float32)."""
        return self.float_tflite()

    def accept(self, technique: Any) -> None:
        """Raise RecipeError unless ``technique`` accepts this model's form."""
        technique.refuse(self.form, str(self.source.path), self.why())


class KerasHandle(ModelHandle):
    """A .keras or .h5 file: a Keras graph (Keras 3 models bridged to tf_keras)."""

    form = ModelForm.KERAS

    def __init__(self, source: ModelSource, trust_code: bool = False) -> None:
        super().__init__(source, trust_code)
        self._model: Any = None

    def keras(self) -> Any:
        if self._model is None:
            from .._native import quiet

            with quiet():
                self._model = load_keras(self.source, trust_code=self.trust_code)
        return self._model

    def converter_source(self) -> Any:
        return self.keras()

    def check_code(self) -> None:
        if not self.trust_code:
            refuse_code(self.source)


class SavedModelHandle(KerasHandle):
    """A SavedModel directory: its Keras graph where it has one (and no layer holds code, unless trusted),
    else its TensorFlow graph, which the converter takes and which runs no Python."""

    def __init__(self, source: ModelSource, trust_code: bool = False) -> None:
        super().__init__(source, trust_code)
        self._why: str | None = None

    def check_code(self) -> None:
        """Nothing: a SavedModel whose Keras layers carry code is converted from its TensorFlow graph."""

    def _load(self) -> None:
        if self._model is not None or self._why is not None:
            return
        try:
            super().keras()
        except ModelError as exc:
            found = [] if self.trust_code else code_layers(self.source)
            self._why = (f"its Keras layers hold Python code ({', '.join(found[:3])}), so it is converted from its "
                         f"graph; pass {TRUST_FLAG} to load them") if found else \
                f"the SavedModel has no Keras model ({str(exc).split(': ', 1)[-1][:120]})"

    @property
    def form(self) -> ModelForm:  # type: ignore[override]
        self._load()
        return ModelForm.KERAS if self._model is not None else ModelForm.SAVEDMODEL

    def why(self) -> str:
        self._load()
        return self._why or "a SavedModel with a Keras model"

    def keras(self) -> Any:
        self._load()
        if self._model is None:
            raise RecipeError(f"{self.source.path}: no Keras model: {self.why()}")
        return self._model

    def converter_source(self) -> Any:
        self._load()
        return self._model if self._model is not None else str(self.source.path)


class TfliteHandle(ModelHandle):
    """A .tflite flatbuffer. Its float form is the file normalized (:func:`edgesdk.tflite.graph.normalize`:
    fp16 or int8 weights behind DEQUANTIZE folded to float32, hybrid weights dequantized, a signature
    added); a model whose activations are already integer stays as it is, in form INTEGER."""

    def __init__(self, source: ModelSource, trust_code: bool = False) -> None:
        super().__init__(source, trust_code)
        self._integer: bool | None = None

    def _normalize(self) -> None:
        if self._integer is not None:
            return
        from ..tflite.graph import normalize
        from ..tflite.validate import CORRUPT

        try:
            done = normalize(self.as_given())
        except ModelError as exc:
            raise ModelError(f"{self.source.path}: {exc}") from exc
        except CORRUPT as exc:  # a mutated file the structure check let through
            raise ModelError(f"{self.source.path}: the model's structure is invalid ({type(exc).__name__}: "
                             f"{str(exc)[:200]}); the file is corrupt") from exc
        self._integer, self.changes, self.custom_ops, self._float = done.integer, done.changes, done.custom_ops, \
            done.content
        from ..tflite.graph import FLOAT16, Graph

        given = Graph(self.as_given())
        self.fp16_weights = any(t.type == FLOAT16 and given.constant(i) is not None
                                for i, t in enumerate(given.sub.tensors or []))

    @property
    def form(self) -> ModelForm:
        self._normalize()
        return ModelForm.INTEGER if self._integer else ModelForm.TFLITE

    @property
    def own_precision(self) -> str | None:
        return "int8" if self.form == ModelForm.INTEGER else "fp16" if self.fp16_weights else None

    def why(self) -> str:
        if self.form == ModelForm.INTEGER:
            from ..techniques import REGISTRY, listed

            takes = [t.name for t in REGISTRY.values() if ModelForm.INTEGER in t.forms]
            if self._float_interface():   # int8=io turns a float interface to int8
                takes.insert(takes.index(self.own_precision) + 1 if self.own_precision in takes else 0,
                             f"{self.own_precision}=io")
            return ("an integer .tflite: its activations are already quantized, so the float values that "
                    f"re-quantizing or training needs are gone ({listed(takes, 'and')} apply); "
                    "give the float .tflite or the model's source for the rest")
        return ("a .tflite has no training graph (qat, distill, channels and fine-tuning need one): give the "
                ".keras, .h5 or SavedModel it came from")

    def converter_source(self) -> Any:
        raise RecipeError(f"{self.source.path}: {self.why()}")

    def _float_interface(self) -> bool:
        from ..tflite.graph import FLOAT32, Graph

        graph = Graph(self.float_tflite())
        return all(graph.tensor(int(i)).type == FLOAT32 for i in graph.sub.inputs if i >= 0)

    def as_given(self) -> bytes:
        return self.source.path.read_bytes()

    def float_tflite(self) -> bytes:
        """The normalized float model (an integer model as it is: the reference its compressions are
        compared with)."""
        self._normalize()
        assert self._float is not None
        return self._float

