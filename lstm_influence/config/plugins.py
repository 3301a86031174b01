"""Plug-ins: a ``strategy`` or ``dataset`` config node names its class or callable with ``_target_``.

There is no registry and no schema besides the plug-in itself: the keyword parameters of the class's ``__init__``
(along its base classes, for as long as each passes ``**kwargs`` on) or of the callable are the keys its YAML may
set, and their annotations are the types those keys must have. The built-ins are declared exactly like a user's.

:func:`settings` reads a node against its target and returns the keyword arguments to call it with, or raises
:class:`~lstm_influence.config.schema.ConfigError` naming the key, the value and what would be valid: an unknown key
(with the valid keys), a value of the wrong type or outside a ``Literal``'s choices, a missing required key. It
imports the target (and so whatever the target imports), nothing else; this module itself imports no TensorFlow.
:func:`strategy_settings` and :func:`dataset_settings` apply it with each group's contract.

Annotations understood: ``bool``, ``int``, ``float`` (an int is a float), ``str``, ``None``, ``Any``,
``Literal[...]``, unions (``X | None``), ``list[X]``, ``tuple[X, ...]``, ``dict[K, V]`` and their ``collections.abc``
forms, and classes (``isinstance``). Anything else, or a parameter without an annotation, accepts any value.
"""

from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lstm_influence.config.errors import ConfigError

TARGET = "_target_"


def resolve(node: DictConfig | Mapping[str, Any], group: str) -> Any:
    """The object ``node._target_`` names (``package.module.Name``), imported.

    Raises:
        ConfigError: no ``_target_``, or one that cannot be imported, naming the value.
    """
    path = node.get(TARGET) if node is not None else None
    if not isinstance(path, str) or not path:
        raise ConfigError(
            f"{group}.{TARGET}={path!r}: expected the dotted path of the {group}'s class or function, e.g. "
            f"'my_package.my_module.MyName' (every {group} YAML names one)"
        )
    module_name, _, attribute = path.rpartition(".")
    if not module_name:
        raise ConfigError(f"{group}.{TARGET}={path!r}: expected a dotted path 'module.Name'")
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(
            f"{group}.{TARGET}={path!r}: cannot import {module_name!r} ({err}); is its package installed or on "
            "PYTHONPATH?"
        ) from None
    if not hasattr(module, attribute):
        public = sorted(name for name in vars(module) if not name.startswith("_"))
        raise ConfigError(f"{group}.{TARGET}={path!r}: {module_name} has no {attribute!r}; it has {', '.join(public)}")
    return getattr(module, attribute)


def parameters(target: Callable[..., Any], stop_at: type | None = None) -> tuple[dict[str, inspect.Parameter], bool]:
    """The keyword parameters ``target`` accepts, and whether it also takes ``**kwargs``.

    For a class, the ``__init__`` of each class along its MRO is read while each passes ``**kwargs`` on, down to and
    including ``stop_at``: a subclass's own settings plus those of the bases it hands the rest to.
    """
    found: dict[str, inspect.Parameter] = {}
    functions = []
    if inspect.isclass(target):
        for cls in target.__mro__:
            if "__init__" not in vars(cls) or cls is object:
                continue
            functions.append(vars(cls)["__init__"])
            if stop_at is not None and cls is stop_at:
                break
            try:
                signature = inspect.signature(vars(cls)["__init__"])
            except (TypeError, ValueError):
                break
            if not any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
                break
    else:
        functions.append(target)
    var_keyword = False
    for position, function in enumerate(functions):
        try:
            params = list(inspect.signature(function).parameters.values())
        except (TypeError, ValueError):  # a builtin without a signature: nothing to check it against
            return found, True
        if inspect.isclass(target):
            params = params[1:]  # self
        for param in params:
            if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
                found.setdefault(param.name, _with_hint(param, function))
        last = position == len(functions) - 1
        var_keyword = last and any(p.kind is p.VAR_KEYWORD for p in params)
    return found, var_keyword


def _with_hint(param: inspect.Parameter, function: Callable[..., Any]) -> inspect.Parameter:
    # Annotations are strings under `from __future__ import annotations`; resolve them in the function's module.
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # an annotation that does not resolve checks nothing rather than blocking the run
        return param.replace(annotation=inspect.Parameter.empty)
    return param.replace(annotation=hints.get(param.name, inspect.Parameter.empty))


def settings(
    node: DictConfig | Mapping[str, Any],
    target: Callable[..., Any],
    group: str,
    *,
    supplied: Iterable[str] = (),
    passed_on: Iterable[str] = (),
    stop_at: type | None = None,
) -> dict[str, Any]:
    """The node's keys, checked against ``target``'s parameters, as keyword arguments (plain Python values).

    Args:
        node: the config node (``cfg.strategy``, ``cfg.dataset``).
        target: the class or callable its ``_target_`` names.
        group: the node's key in the config, for messages (``strategy``).
        supplied: parameters the framework fills in itself; the YAML must not set them.
        passed_on: keys the framework reads from the node that the target may also take through ``**kwargs``
            (``name``, ...); they are passed when the target names them or takes ``**kwargs``.
        stop_at: for a class, the base whose ``__init__`` ends the walk along the MRO.

    Raises:
        ConfigError: an unknown key (listing the valid keys), a value of the wrong type (naming the type or the
            choices), or a required parameter the node does not set.
    """
    values = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    values.pop(TARGET, None)
    params, var_keyword = parameters(target, stop_at)
    supplied, passed_on = set(supplied), set(passed_on)
    settable = {name for name in params if name not in supplied}
    valid = sorted(settable | passed_on)
    where = f"{group} {getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', target)!s}"
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key in supplied:
            raise ConfigError(f"{group}.{key}={value!r}: set by the framework, not by the config ({where})")
        if key not in settable and key not in passed_on:
            raise ConfigError(f"{group}.{key}={value!r}: unknown key for {where}; valid keys: {', '.join(valid)}")
        if key in params:
            check_value(f"{group}.{key}", value, params[key].annotation)
            kwargs[key] = value
        elif var_keyword:
            kwargs[key] = value
    missing = [
        name for name in sorted(settable) if params[name].default is inspect.Parameter.empty and name not in values
    ]
    if missing:
        raise ConfigError(
            f"{group}: missing {', '.join(missing)} ({where} requires them); valid keys: {', '.join(valid)}"
        )
    return kwargs


def check_value(field: str, value: Any, annotation: Any) -> None:
    """Raise :class:`ConfigError` unless ``value`` fits ``annotation`` (see the module doc for what is understood)."""
    if not _fits(value, annotation):
        raise ConfigError(f"{field}={value!r}: expected {describe(annotation)}")


def _fits(value: Any, annotation: Any) -> bool:
    if annotation is inspect.Parameter.empty or annotation is Any:
        return True
    if annotation is None or annotation is type(None):
        return value is None
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return any(_fits(value, arm) for arm in args)
    if origin is typing.Literal:
        return any(value == choice and type(value) is type(choice) for choice in args)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin in (list, tuple, collections.abc.Sequence, typing.Sequence):
        if not isinstance(value, (list, tuple)):
            return False
        element = args[0] if args else Any
        return all(_fits(item, element) for item in value)
    if origin in (dict, collections.abc.Mapping, typing.Mapping):
        if not isinstance(value, dict):
            return False
        key_type, value_type = args if len(args) == 2 else (Any, Any)
        return all(_fits(k, key_type) and _fits(v, value_type) for k, v in value.items())
    if inspect.isclass(annotation):
        return isinstance(value, annotation)
    return True


def describe(annotation: Any) -> str:
    """An annotation in words: ``a number``, ``one of chrono, zeros``, ``a list of ...``, ``... or null``."""
    if annotation is None or annotation is type(None):
        return "null"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return " or ".join(describe(arm) for arm in args)
    if origin is typing.Literal:
        return f"one of {', '.join(str(choice) for choice in args)}"
    if origin in (list, tuple, collections.abc.Sequence, typing.Sequence):
        return f"a list of {describe(args[0]) if args else 'values'}"
    if origin in (dict, collections.abc.Mapping, typing.Mapping):
        return f"a mapping of {describe(args[0])} to {describe(args[1])}" if len(args) == 2 else "a mapping"
    words = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if annotation in words:
        return words[annotation]
    return f"a {getattr(annotation, '__name__', annotation)}"


# ---------------------------------------------------------------------------------------------------------------
# the two plug-in groups


STRATEGY_BASE = "lstm_influence.strategies.base.Strategy"
"""What every strategy subclasses, ``lstm_influence.Strategy``, by its qualified name: the config stage checks a class
against it without importing the strategies (which import Keras), as the stage below them."""

SUPPLIED = ("input_dim", "units", "seq_len", "horizon", "seed")
"""The ``Strategy`` arguments the framework fills in from the model and the data; a YAML does not set them."""

FRAMEWORK_KEYS = ("name", "target_norm_loss", "data_seed")
"""Dataset keys the framework reads (the tag, the convergence target's default, the data seed)."""


def strategy_class(node: DictConfig) -> type:
    """The ``lstm_influence.Strategy`` subclass ``node._target_`` names.

    Raises:
        ConfigError: no such class, or one that does not subclass :class:`lstm_influence.Strategy`.
    """
    cls = resolve(node, "strategy")
    bases = {f"{base.__module__}.{base.__qualname__}" for base in getattr(cls, "__mro__", ())}
    if not (isinstance(cls, type) and STRATEGY_BASE in bases):
        raise ConfigError(
            f"strategy._target_={node.get('_target_')!r}: names {cls!r}, which is not a subclass of "
            "lstm_influence.Strategy"
        )
    return cls


def strategy_settings(node: DictConfig) -> tuple[type, dict[str, Any]]:
    """The class ``node`` names and its settings, checked against its signature (nothing is built).

    The walk along the class's bases ends at ``Strategy.__init__``, which takes no ``**kwargs``.

    Raises:
        ConfigError: naming the key, the bad value and the valid keys or choices.
    """
    cls = strategy_class(node)
    if not node.get("name"):
        raise ConfigError(f"strategy.name={node.get('name')!r}: every strategy YAML sets a name (its tag and arm)")
    return cls, settings(node, cls, "strategy", supplied=SUPPLIED)


def dataset_loader(node: DictConfig) -> Callable[..., Any]:
    """The callable ``node._target_`` names (a function, or a class whose instances are datasets).

    Raises:
        ConfigError: no such callable.
    """
    loader = resolve(node, "dataset")
    if not callable(loader):
        raise ConfigError(f"dataset._target_={node.get('_target_')!r}: names {loader!r}, which cannot be called")
    return loader


def dataset_settings(node: DictConfig) -> tuple[Callable[..., Any], dict[str, Any]]:
    """The callable ``node`` names and its keyword arguments, checked against its signature (nothing is loaded).

    Keys the framework itself reads from a dataset node, :data:`FRAMEWORK_KEYS`, are passed to the callable too when
    it names them or takes ``**kwargs``; any other key must be one of its named parameters.

    Raises:
        ConfigError: a ``_target_`` that cannot be imported, or keys and values its signature does not accept.
    """
    loader = dataset_loader(node)
    return loader, settings(node, loader, "dataset", passed_on=FRAMEWORK_KEYS)


__all__ = [
    "FRAMEWORK_KEYS",
    "STRATEGY_BASE",
    "SUPPLIED",
    "TARGET",
    "check_value",
    "dataset_loader",
    "dataset_settings",
    "describe",
    "parameters",
    "resolve",
    "settings",
    "strategy_class",
    "strategy_settings",
]
