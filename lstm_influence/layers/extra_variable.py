"""An LSTM whose kernel (or recurrent kernel) is combined, in the forward pass, with a new trainable variable.

For W the chosen matrix (``kernel`` (input_dim, 4u) or ``recurrent_kernel`` (u, 4u)) and M the ``(4u,)`` column mask
of the targeted gate blocks (broadcast over rows), the cell computes with the effective matrix::

    additive, full:     W_eff = W + Δ ⊙ M                 Δ: W's shape, named "<matrix>_delta"
    additive, rank r:   W_eff = W + (α / r) · (A B) ⊙ M   A: (rows, r) "<matrix>_lora_a", B: (r, 4u) "<matrix>_lora_b"
    gain:               W_eff = W ⊙ (1 + g ⊙ M)           g: one factor per gate unit, (4u,), named "<matrix>_gain"

The rank-r form is LoRA (Hu et al. 2021) on an LSTM weight: A starts He-uniform and B at 0, so Δ starts at 0, and
only ``r · (rows + 4u)`` numbers train; α (default r) scales it as Keras's ``Dense(lora_alpha=...)`` does.

**What a full-rank Δ is under Adam.** With Δ initialised at 0, no L2 and the full mask, ∂L/∂Δ = ∂L/∂W, so W and Δ
receive the same gradient at every step and Adam, whose update depends on the gradient history alone, moves both
by the same step: W + Δ follows exactly the trajectory of a plain W trained with twice the learning rate. A
full-rank additive variable is then a learning-rate change, not a new kind of prior. It differs once Δ is masked
(only the targeted blocks go twice as fast), penalised (``l2``), frozen-based (``trainable_base=False``, then it is
plain W at the plain rate), low-rank, or gradients are clipped by their global norm (Δ doubles it). The same
holds for SGD with or without momentum: any optimiser whose step is the learning rate times a function of the
variable's own gradient history. Only W's entries go twice as fast; every other weight keeps the plain rate.

Keras addresses both consumers of the weight through the cell's ``kernel`` property (the pattern of Keras's own
``Dense`` LoRA): the step-by-step path (``RNN.inner_loop`` calls the cell) and the fused cuDNN path
(``LSTM.inner_loop`` hands ``cell.kernel`` to the backend, which accepts a tensor), so the layer keeps cuDNN
eligibility. W_eff is loop-invariant and is formed once per call, not once per time step.

Entries of the variable outside M start at 0 and, their gradient being 0 through the mask, stay 0 under any
optimiser and under the L2 penalty (a Keras regularizer, so it enters ``model.losses``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import keras
import numpy as np
from keras import ops

from lstm_influence import gates
from lstm_influence.layers.gate_reading import lstm_cell_gate_activations
from lstm_influence.layers.initializers import GateTargetInitializer, check_finite, check_seed

MODES: tuple[str, ...] = ("additive", "gain")
"""How the variable combines with W: ``W + Δ`` or ``W ⊙ (1 + g)``."""

EXTRA_MATRICES: tuple[str, ...] = ("kernel", "recurrent_kernel")
"""The matrices the variable can combine with."""

_CELL_ARGS: tuple[str, ...] = (
    "activation",
    "recurrent_activation",
    "use_bias",
    "kernel_initializer",
    "recurrent_initializer",
    "bias_initializer",
    "unit_forget_bias",
    "kernel_regularizer",
    "recurrent_regularizer",
    "bias_regularizer",
    "kernel_constraint",
    "recurrent_constraint",
    "bias_constraint",
    "dropout",
    "recurrent_dropout",
    "seed",
)
"""``keras.layers.LSTM`` arguments that belong to its cell (as ``LSTM.__init__`` forwards them)."""

_EXTRA_ARGS: tuple[str, ...] = (
    "mode",
    "matrix",
    "target_gates",
    "init",
    "init_seed",
    "l2",
    "trainable_base",
    "rank",
    "alpha",
)
"""The arguments this layer adds to ``keras.layers.LSTM``'s."""


def variable_names(mode: str, matrix: str, rank: int | None = None) -> tuple[str, ...]:
    """The new variables' names: ``("kernel_delta",)``, ``("kernel_lora_a", "kernel_lora_b")``, ``("kernel_gain",)``…"""
    if mode == "gain":
        return (f"{matrix}_gain",)
    return (f"{matrix}_delta",) if rank is None else (f"{matrix}_lora_a", f"{matrix}_lora_b")


def seeded_initializer(identifier: Any, seed: int | None = None) -> keras.initializers.Initializer:
    """A Keras initializer whose random seed is fixed in its config, so that its draw can be repeated.

    With ``seed=None`` the seed is drawn exactly as Keras draws it for an initializer given by name (one draw from
    Python's ``random``, which ``keras.utils.set_random_seed`` seeds), so a layer built with the result has the
    same weights as a plain Keras layer built at that point. With an integer ``seed`` Python's ``random`` is left
    untouched, so every later draw is unchanged.

    Raises:
        ValueError: ``identifier`` is not a Keras initializer.
    """
    state = random.getstate()
    initializer = keras.initializers.get(identifier)
    if seed is not None:
        random.setstate(state)
    config = initializer.get_config()
    drawn = getattr(initializer, "seed", None)
    if "seed" in config and (seed is not None or isinstance(drawn, int)):
        config["seed"] = int(seed if seed is not None else drawn)
        initializer = initializer.__class__.from_config(config)
    return initializer


def check_initializer(name: str, identifier: Any) -> None:
    """Raise ``ValueError`` unless ``identifier`` names a Keras initializer (draws nothing from ``random``)."""
    state = random.getstate()
    try:
        keras.initializers.get(identifier)
    except (ValueError, TypeError):
        raise ValueError(
            f"{name}={identifier!r}: expected a number or a Keras initializer name such as random_normal, "
            f"glorot_uniform, orthogonal or zeros"
        ) from None
    finally:
        random.setstate(state)


def cudnn_conditions(layer: keras.layers.LSTM) -> dict[str, bool]:
    """The layer-side conditions of Keras's fused cuDNN LSTM kernel, by name (the device is the backend's part)."""
    return {
        "activation is tanh": keras.activations.serialize(layer.activation) == "tanh",
        "recurrent_activation is sigmoid": keras.activations.serialize(layer.recurrent_activation) == "sigmoid",
        "recurrent_dropout == 0": not layer.recurrent_dropout,
        "unroll is False": not layer.unroll,
        "use_bias is True": bool(layer.use_bias),
        "use_cudnn allows it": layer.use_cudnn in ("auto", True),
    }


def _init_initializer(
    init: Any, init_seed: int | None, target_gates: Sequence[str], layout: str, units: int
) -> keras.initializers.Initializer:
    """The variable's initializer: ``init`` (a number, or a seeded Keras prior) on M, exactly 0 outside it."""
    if isinstance(init, (int, float)) and not isinstance(init, bool):
        on = [{"gate": g, "op": "constant", "value": float(init)} for g in target_gates]
        return GateTargetInitializer("zeros", layout, on, units=units)
    outside = [{"gate": g, "op": "constant", "value": 0.0} for g in gates.GATES if g not in target_gates]
    return GateTargetInitializer(seeded_initializer(init, seed=init_seed), layout, outside, units=units)


def check_arguments(
    mode: str,
    matrix: str,
    target_gates: str | Sequence[str],
    init: Any,
    init_seed: int | None,
    l2: float,
    trainable_base: bool,
    rank: int | None,
    alpha: float | None,
) -> dict[str, Any]:
    """The extra variable's arguments, checked alone and together, in normal form (see :class:`ExtraVariableLSTMCell`).

    Raises:
        ValueError: naming the argument, the value received and what would be valid.
    """
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}: expected one of {', '.join(MODES)}")
    if matrix not in EXTRA_MATRICES:
        raise ValueError(f"matrix={matrix!r}: expected one of {', '.join(EXTRA_MATRICES)}")
    try:
        target_gates = gates.expand_gates(target_gates)
    except gates.TargetError as err:
        raise ValueError(f"target_gates: {err}") from None
    l2 = check_finite("l2", l2)
    if l2 < 0:
        raise ValueError(f"l2={l2}: expected a number >= 0")
    if isinstance(init, (str, dict)):
        check_initializer("init", init)
    else:
        init = check_finite("init", init)
        if mode == "gain" and init <= -1.0:
            raise ValueError(f"init={init}: in gain mode W ⊙ (1 + g) needs 1 + init > 0, so init > -1")
    if rank is not None:
        if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 1:
            raise ValueError(f"rank={rank!r}: expected a positive integer (LoRA's r), or None for a full Δ")
        if mode != "additive":
            raise ValueError(f"rank={rank} with mode={mode!r}: a low-rank Δ = A·B exists in additive mode only")
        if init != 0.0:
            raise ValueError(f"rank={rank} with init={init!r}: Δ = A·B starts at 0 (B = 0), so init must be 0")
        rank = int(rank)
    if alpha is not None:
        if rank is None:
            raise ValueError(f"alpha={alpha}: alpha scales the low-rank Δ = (alpha / rank) · A·B; give a rank")
        alpha = check_finite("alpha", alpha)
        if alpha <= 0:
            raise ValueError(f"alpha={alpha}: expected a positive number")
    return {
        "mode": mode,
        "matrix": matrix,
        "target_gates": target_gates,
        "init": init,
        "init_seed": check_seed(init_seed),
        "l2": l2,
        "trainable_base": bool(trainable_base),
        "rank": rank,
        "alpha": alpha,
    }


@keras.saving.register_keras_serializable(package="lstm_influence")
class ExtraVariableLSTMCell(keras.layers.LSTMCell):
    """An ``LSTMCell`` whose ``kernel`` (or ``recurrent_kernel``) is W combined with a trainable variable.

    Args:
        units: as ``LSTMCell``.
        mode: ``additive`` (W + Δ ⊙ M) or ``gain`` (W ⊙ (1 + g ⊙ M)).
        matrix: ``kernel`` or ``recurrent_kernel``.
        target_gates: gate names (or ``all``) whose column blocks form the mask M.
        init: the variable's initial value on M: a number, or a Keras initializer name or config (a random
            prior). Gain mode needs ``init > -1`` (1 + g must start positive); ``rank`` needs ``init = 0``.
        init_seed: seed of a random ``init`` and of LoRA's A; None: drawn as Keras draws.
        l2: weight of the L2 penalty: ``l2 · Σ Δ²`` (or ``Σ g²``); with ``rank``, ``l2 · (Σ A² + Σ B²)``, as
            Keras's ``Dense`` regularises its LoRA factors.
        trainable_base: False freezes W (as LoRA does); the other weights keep their own ``trainable``.
        rank: None: a full Δ; r: Δ = (α / r) · A B (LoRA), additive mode only.
        alpha: LoRA's scale numerator (default: ``rank``, a scale of 1); rank only.
        **kwargs: the other ``LSTMCell`` arguments.

    The stored weights are ``base_kernel`` and ``base_recurrent_kernel`` (their variable names stay ``kernel``
    and ``recurrent_kernel``); the ``kernel`` and ``recurrent_kernel`` properties return the effective weights.

    Raises:
        ValueError: an argument outside its valid values, named with the value received.
    """

    def __init__(
        self,
        units: int,
        mode: str = "additive",
        matrix: str = "kernel",
        target_gates: str | Sequence[str] = gates.GATES,
        init: Any = 0.0,
        init_seed: int | None = None,
        l2: float = 0.0,
        trainable_base: bool = True,
        rank: int | None = None,
        alpha: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(units, **kwargs)
        checked = check_arguments(
            mode=mode,
            matrix=matrix,
            target_gates=target_gates,
            init=init,
            init_seed=init_seed,
            l2=l2,
            trainable_base=trainable_base,
            rank=rank,
            alpha=alpha,
        )
        for key in _EXTRA_ARGS:
            setattr(self, key, checked[key])
        self.extra = None
        self.lora_a = None
        self.lora_b = None
        object.__setattr__(self, "_frozen", None)

    # LSTMCell.build assigns self.kernel / self.recurrent_kernel: the setters keep those variables as the base.
    @property
    def kernel(self) -> Any:
        return self._effective("kernel")

    @kernel.setter
    def kernel(self, value: Any) -> None:
        self.base_kernel = value

    @property
    def recurrent_kernel(self) -> Any:
        return self._effective("recurrent_kernel")

    @recurrent_kernel.setter
    def recurrent_kernel(self, value: Any) -> None:
        self.base_recurrent_kernel = value

    @property
    def column_mask(self) -> np.ndarray:
        """M: a ``(4u,)`` float vector, 1 on the targeted gate blocks."""
        return gates.gate_columns_mask(self.target_gates, self.units)

    @property
    def scale(self) -> float:
        """LoRA's α / r (1 without a rank)."""
        return 1.0 if self.rank is None else (self.alpha if self.alpha is not None else self.rank) / self.rank

    @property
    def extra_weights(self) -> list[Any]:
        """The variables this cell adds: ``[Δ]``, ``[g]`` or ``[A, B]``; empty before ``build``."""
        return [v for v in (self.extra, self.lora_a, self.lora_b) if v is not None]

    def extra_value(self) -> Any:
        """The variable as a matrix, before the mask: Δ (or (α / r) · A B), or g."""
        if self.rank is None:
            return self.extra
        return ops.multiply(ops.matmul(self.lora_a, self.lora_b), self.scale)

    def _effective(self, matrix: str) -> Any:
        base = getattr(self, f"base_{matrix}")
        if matrix != self.matrix or not self.extra_weights:
            return base
        if self._frozen is not None:
            return self._frozen
        return self.effective_matrix()

    def effective_matrix(self) -> Any:
        """W_eff from the current W and variable (see the module doc)."""
        base = getattr(self, f"base_{self.matrix}")
        extra = self.extra_value()
        if len(self.target_gates) < len(gates.GATES):
            extra = extra * ops.convert_to_tensor(self.column_mask, dtype=extra.dtype)
        if self.mode == "additive":
            return ops.add(base, extra)
        return ops.multiply(base, ops.add(1.0, extra))

    @contextmanager
    def frozen_effective_matrix(self) -> Iterator[None]:
        """Within the block, ``kernel`` returns one W_eff tensor (formed once), not a new one per read."""
        object.__setattr__(self, "_frozen", self.effective_matrix() if self.extra_weights else None)
        try:
            yield
        finally:
            object.__setattr__(self, "_frozen", None)

    def build(self, input_shape: Any) -> None:
        super().build(input_shape)
        base = getattr(self, f"base_{self.matrix}")
        regularizer = keras.regularizers.L2(self.l2) if self.l2 else None
        names = variable_names(self.mode, self.matrix, self.rank)
        if self.rank is not None:
            self.lora_a = self.add_weight(
                name=names[0],
                shape=(base.shape[0], self.rank),
                initializer=seeded_initializer("he_uniform", seed=self.init_seed),
                regularizer=regularizer,
            )
            self.lora_b = self.add_weight(
                name=names[1], shape=(self.rank, 4 * self.units), initializer="zeros", regularizer=regularizer
            )
        else:
            additive = self.mode == "additive"
            self.extra = self.add_weight(
                name=names[0],
                shape=tuple(base.shape) if additive else (4 * self.units,),
                # The gain vector has the bias's layout.
                initializer=_init_initializer(
                    self.init, self.init_seed, self.target_gates, self.matrix if additive else "bias", self.units
                ),
                regularizer=regularizer,
            )
        if not self.trainable_base:
            base.trainable = False

    def gate_activations(self, inputs: Any, states: Any) -> dict[str, Any]:
        """The input, forget and output gates at one step, on the effective kernel (the interface of
        :mod:`lstm_influence.layers.gate_reading`)."""
        with self.frozen_effective_matrix():
            return lstm_cell_gate_activations(self, inputs, states)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **{key: _extra_config(self, key) for key in _EXTRA_ARGS}}


def _extra_config(cell: ExtraVariableLSTMCell, key: str) -> Any:
    value = getattr(cell, key)
    return list(value) if key == "target_gates" else value


@keras.saving.register_keras_serializable(package="lstm_influence")
class ExtraVariableLSTM(keras.layers.LSTM):
    """``keras.layers.LSTM`` running an :class:`ExtraVariableLSTMCell`: the same arguments, plus the cell's new ones.

    Args:
        units: as ``keras.layers.LSTM``.
        mode, matrix, target_gates, init, init_seed, l2, trainable_base, rank, alpha: as
            :class:`ExtraVariableLSTMCell`.
        use_cudnn: as ``keras.layers.LSTM``.
        **kwargs: every other ``keras.layers.LSTM`` argument.

    Call shapes: as ``keras.layers.LSTM``, ``(batch, timesteps, features)`` in.

    >>> layer = ExtraVariableLSTM(4, target_gates=["forget"], rank=2)
    >>> y = layer(np.zeros((2, 5, 3), "float32"))
    >>> [w.name for w in layer.trainable_weights]
    ['kernel', 'recurrent_kernel', 'bias', 'kernel_lora_a', 'kernel_lora_b']
    """

    def __init__(
        self,
        units: int,
        mode: str = "additive",
        matrix: str = "kernel",
        target_gates: str | Sequence[str] = gates.GATES,
        init: Any = 0.0,
        init_seed: int | None = None,
        l2: float = 0.0,
        trainable_base: bool = True,
        rank: int | None = None,
        alpha: float | None = None,
        use_cudnn: str | bool = "auto",
        **kwargs: Any,
    ) -> None:
        if use_cudnn not in ("auto", True, False):
            raise ValueError(f"use_cudnn={use_cudnn!r}: expected one of 'auto', True, False")
        cell_kwargs = {key: kwargs.pop(key) for key in _CELL_ARGS if key in kwargs}
        cell = ExtraVariableLSTMCell(
            units,
            mode=mode,
            matrix=matrix,
            target_gates=target_gates,
            init=init,
            init_seed=init_seed,
            l2=l2,
            trainable_base=trainable_base,
            rank=rank,
            alpha=alpha,
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name="lstm_cell",
            implementation=kwargs.pop("implementation", 2),
            **cell_kwargs,
        )
        # keras.layers.LSTM.__init__ builds a plain LSTMCell and takes no cell; RNN.__init__ takes ours, and what
        # LSTM.__init__ does after its own super().__init__ call follows.
        keras.layers.RNN.__init__(self, cell, **kwargs)
        self.input_spec = keras.layers.InputSpec(ndim=3)
        self.use_cudnn = use_cudnn
        if (
            keras.backend.backend() == "tensorflow"
            and all(cudnn_conditions(self).values())
            and keras.distribution.list_devices("gpu")
        ):
            # cuDNN ops aren't XLA compatible (as LSTM.__init__ notes).
            self.supports_jit = False

    def inner_loop(self, sequences: Any, initial_state: Any, mask: Any, training: bool = False) -> Any:
        # W_eff is loop-invariant: formed once here rather than at every step of the step-by-step path.
        with self.cell.frozen_effective_matrix():
            return super().inner_loop(sequences, initial_state, mask, training=training)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **{key: _extra_config(self.cell, key) for key in _EXTRA_ARGS}}

    @classmethod
    def from_lstm(cls, layer: keras.layers.LSTM, **extra_args: Any) -> ExtraVariableLSTM:
        """A built ``ExtraVariableLSTM`` with the same configuration and weights as ``layer``, Δ at its start.

        The fine-tuning route for a pretrained stock ``keras.layers.LSTM``: its kernel, recurrent kernel and bias
        are copied into W, U and b, the new variable starts at its initial value (0 by default), so the new layer's
        outputs equal ``layer``'s until the variable trains. Every ``keras.layers.LSTM`` argument (units, name,
        ``return_sequences``, …) is copied; ``extra_args`` sets this layer's own (``rank``, ``trainable_base``, …)
        or overrides a copied one. An ``ExtraVariableLSTM`` source contributes its effective weights (its
        variable merged into W).

        To convert a whole pretrained model, including one loaded from a stock ``.weights.h5`` file (Keras finds a
        layer's variables there under its class name, so that file does not load into a model that already uses
        this class)::

            stock.load_weights("pretrained.weights.h5")
            tuned = keras.models.clone_model(
                stock,
                clone_function=lambda l: ExtraVariableLSTM.from_lstm(l, rank=4, trainable_base=False)
                if isinstance(l, keras.layers.LSTM) else l,
            )

        (returning the other layers themselves shares their trained weights with ``stock``).

        Args:
            layer: a built ``keras.layers.LSTM`` (called once, or ``build`` called).
            **extra_args: this layer's own arguments, or overrides of the copied ones.

        Raises:
            ValueError: ``layer`` is not a ``keras.layers.LSTM``, or is not built yet.
        """
        if not isinstance(layer, keras.layers.LSTM):
            raise ValueError(f"from_lstm needs a keras.layers.LSTM, got {type(layer).__name__}")
        if not layer.built:
            raise ValueError(
                f"from_lstm: layer {layer.name!r} is not built, so it has no weights to copy; call it on data "
                "or load its weights first"
            )
        config = {k: v for k, v in layer.get_config().items() if k not in _EXTRA_ARGS}
        converted = cls.from_config({**config, **extra_args})
        cell = layer.cell
        input_dim = int(cell.kernel.shape[0])
        converted.build((None, None, input_dim))
        converted.cell.base_kernel.assign(ops.convert_to_numpy(cell.kernel))
        converted.cell.base_recurrent_kernel.assign(ops.convert_to_numpy(cell.recurrent_kernel))
        if cell.use_bias and converted.cell.use_bias:
            converted.cell.bias.assign(ops.convert_to_numpy(cell.bias))
        elif cell.use_bias != converted.cell.use_bias:
            raise ValueError(f"from_lstm: use_bias={converted.cell.use_bias} cannot take the weights of use_bias=False")
        return converted
