"""LoRA adapters on disk, in the layout of `peft`'s `save_pretrained`: kilobytes, not the model.

A directory holds two files::

    adapter_config.json          peft_type "LORA", r, lora_alpha, target_modules, ...
    adapter_model.safetensors    base_model.model.<layer>.lora_A.weight  (r, in)
                                 base_model.model.<layer>.lora_B.weight  (out, r)
                                 base_model.model.<module>.<param>       (modules_to_save)

so `peft.PeftModel.from_pretrained(hf_model, directory)` puts a tinyllm adapter on the
matching `transformers` model, and `load_adapter` reads what peft saved. The config holds
only fields peft has had since 0.10, so older versions read it too. Both files are written
atomically (`tinyllm._io`); the safetensors file carries tinyllm's checksum (peft ignores it).

>>> apply_lora(model, r=8, lora_alpha=16, target_modules=["c_attn"])
>>> save_adapter(model, "runs/adapter")          # after training
>>> load_adapter(GPT.load("runs/base"), "runs/adapter")   # applies LoRA, loads A and B
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .._io import atomic_write
from ..nn import Module, apply_lora, lora_layers, named_lora_parameters, unload_lora
from ..nn.lora import LoraConfig, target_matches
from .checkpoint import CheckpointError, read_safetensors_with_metadata, save_safetensors

ADAPTER_CONFIG_NAME = "adapter_config.json"
ADAPTER_WEIGHTS_NAME = "adapter_model.safetensors"
#: peft's PeftModel holds the model as `base_model` (a LoraModel) whose `model` is the original.
PEFT_PREFIX = "base_model.model."
#: peft's TaskType values, and the transformers class-name endings that imply one.
TASK_TYPES = ("CAUSAL_LM", "SEQ_CLS", "SEQ_2_SEQ_LM", "TOKEN_CLS", "QUESTION_ANS",
              "FEATURE_EXTRACTION")
_TASK_BY_CLASS_SUFFIX = {"LMHeadModel": "CAUSAL_LM", "ForCausalLM": "CAUSAL_LM",
                         "ForSequenceClassification": "SEQ_CLS",
                         "ForTokenClassification": "TOKEN_CLS",
                         "ForQuestionAnswering": "QUESTION_ANS"}
# peft options tinyllm does not implement: field -> the only value accepted (peft's default).
_PLAIN_LORA = {"bias": "none", "use_rslora": False, "use_dora": False, "lora_bias": False,
               "use_qalora": False, "rank_pattern": {}, "alpha_pattern": {},
               "layers_to_transform": None, "layer_replication": None, "exclude_modules": None,
               "target_parameters": None, "trainable_token_indices": None,
               "alora_invocation_tokens": None}

# peft initialisations that rewrite the base weights too (the adapter alone does not fit the
# original model unless peft converted it when saving).
_BASE_CHANGING_INITS = ("pissa", "olora", "corda", "loftq")


def _task_type(model: Module) -> str | None:
    """peft's task type for a model, from its transformers class name (None: none fits)."""
    arch = getattr(model, "hf_architecture", "") or ""
    return next((task for suffix, task in _TASK_BY_CLASS_SUFFIX.items()
                 if arch.endswith(suffix)), None)


def adapter_config(model: Module, base_model_name_or_path: str | None = None,
                   task_type: str | None = None) -> dict:
    """The adapter_config.json of a model `apply_lora` adapted, as peft writes it."""
    config = getattr(model, "lora_config", None)
    if not isinstance(config, LoraConfig) or not lora_layers(model):
        raise ValueError(f"save_adapter: {type(model).__name__} has no LoRA adapter; "
                         "apply_lora(model, r, lora_alpha, target_modules) first")
    if task_type is None:
        task_type = _task_type(model)
    elif task_type not in TASK_TYPES:
        raise ValueError(f"save_adapter: unknown task_type {task_type!r}; accepted: "
                         f"{', '.join(TASK_TYPES)} or None")
    targets = config.target_modules
    save = config.modules_to_save
    return {
        "peft_type": "LORA", "task_type": task_type,
        "base_model_name_or_path": None if base_model_name_or_path is None
        else str(base_model_name_or_path),
        "revision": None, "inference_mode": True, "auto_mapping": None,
        "r": config.r, "lora_alpha": config.lora_alpha, "lora_dropout": config.lora_dropout,
        "target_modules": targets if isinstance(targets, str) else list(targets),
        "modules_to_save": None if save is None else list(save),
        # peft sets it when a target is a Conv1D (weight (in, out)); it matters only to merging
        "fan_in_fan_out": any(layer.fan_in_fan_out for _, layer in lora_layers(model)),
        "bias": "none", "use_rslora": False, "use_dora": False, "init_lora_weights": True,
        "layers_to_transform": None, "layers_pattern": None, "rank_pattern": {},
        "alpha_pattern": {},
    }


def save_adapter(model: Module, directory, base_model_name_or_path: str | None = None,
                 task_type: str | None = None) -> Path:
    """Write the adapter of `model` (LoRA A and B, modules_to_save) as peft's save_pretrained.

    `task_type` (peft's: CAUSAL_LM, SEQ_CLS, ...) defaults to the one the model's
    transformers class implies (GPT2LMHeadModel: CAUSAL_LM; ...ForSequenceClassification:
    SEQ_CLS; none for a masked LM). Returns the directory.
    """
    config = adapter_config(model, base_model_name_or_path, task_type)
    arrays = {PEFT_PREFIX + name: p.data for name, p in named_lora_parameters(model)}
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_safetensors(directory / ADAPTER_WEIGHTS_NAME, arrays, {"format": "pt"})
    atomic_write(directory / ADAPTER_CONFIG_NAME,
                 json.dumps(config, indent=2, sort_keys=True) + "\n")
    return directory


# ------------------------------------------------------------------ reading
def read_adapter_config(directory) -> dict:
    """The checked adapter_config.json of an adapter directory (a plain LoRA adapter)."""
    directory = Path(directory)
    path = directory / ADAPTER_CONFIG_NAME
    if not path.is_file():
        what = "is not a directory" if not directory.is_dir() else f"has no {ADAPTER_CONFIG_NAME}"
        raise CheckpointError(f"{directory} {what}; an adapter directory holds "
                              f"{ADAPTER_CONFIG_NAME} and {ADAPTER_WEIGHTS_NAME}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} should hold a JSON object, got {type(config).__name__}")
    if config.get("peft_type") != "LORA":
        raise CheckpointError(f"{path}: peft_type is {config.get('peft_type')!r}; tinyllm "
                              "reads LoRA adapters only (accepted: 'LORA')")
    for field, accepted in _PLAIN_LORA.items():
        if field in config and config[field] != accepted and config[field] is not None:
            raise CheckpointError(f"{path}: {field}={config[field]!r} is a peft option "
                                  f"tinyllm does not implement (accepted: {accepted!r})")
    init = config.get("init_lora_weights")
    if isinstance(init, str) and init.startswith(_BASE_CHANGING_INITS):
        raise CheckpointError(f"{path}: init_lora_weights={init!r} changes the base weights "
                              "as well, so this adapter needs peft's own base model; tinyllm "
                              "reads adapters initialised with True, False, 'gaussian' or "
                              "'eva'")
    for field in ("r", "lora_alpha", "target_modules"):
        if field not in config:
            raise CheckpointError(f"{path} has no {field!r}; a LoRA adapter config needs r, "
                                  "lora_alpha and target_modules")
    return config


def _apply_from_config(model: Module, config: dict, path: Path) -> None:
    """apply_lora with the config's settings (modules_to_save that the model lacks, like
    peft's automatic "score" beside "classifier", are skipped)."""
    save = config.get("modules_to_save")
    if save:
        names = [n for n, _ in model.named_modules() if n]
        save = [s for s in save if any(target_matches(n, [s]) for n in names)] or None
    try:
        apply_lora(model, config["r"], config["lora_alpha"], config["target_modules"],
                   lora_dropout=config.get("lora_dropout") or 0.0, modules_to_save=save)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path} does not fit {type(model).__name__}: {exc}") from None


def _check_adapted(model: Module, config: dict, path: Path) -> None:
    """A model adapted already must have the config's rank and alpha."""
    layers = lora_layers(model)
    name, layer = layers[0]
    for field, ours in (("r", layer.r), ("lora_alpha", layer.lora_alpha)):
        if config[field] != ours:
            raise CheckpointError(f"{path}: {field}={config[field]!r}, but the LoRA layers "
                                  f"of {type(model).__name__} have {field}={ours!r} (e.g. "
                                  f"{name}); build the model without an adapter and let "
                                  "load_adapter apply it")


def load_adapter(model: Module, directory) -> Module:
    """Put the adapter saved in `directory` (by `save_adapter` or peft) on `model`.

    A model without LoRA layers gets them first (`apply_lora` with the file's settings); a
    model with them must match its r and lora_alpha. Every file key must fit a parameter
    and every adapter parameter must be in the file; if not, the error names the file and
    the keys, and a model that had no adapter is left as it was. Returns `model`.
    """
    directory = Path(directory)
    config = read_adapter_config(directory)
    path = directory / ADAPTER_WEIGHTS_NAME
    arrays, _ = read_safetensors_with_metadata(path)
    if lora_layers(model):
        _check_adapted(model, config, directory / ADAPTER_CONFIG_NAME)
        _load_weights(model, arrays, path)
        return model
    trainable = [(p, p.requires_grad) for p in model.parameters()]
    _apply_from_config(model, config, directory / ADAPTER_CONFIG_NAME)
    try:
        _load_weights(model, arrays, path)
    except CheckpointError:
        unload_lora(model)
        for p, requires_grad in trainable:
            p.requires_grad = requires_grad
        raise
    return model


def _load_weights(model: Module, arrays: dict[str, np.ndarray], path: Path) -> None:
    """Copy a file's arrays into the adapter's parameters, checking names and shapes."""
    params = dict(named_lora_parameters(model))
    names = {key: key.removeprefix(PEFT_PREFIX) for key in arrays}
    problems = [f"unexpected key {key}" for key, name in names.items() if name not in params]
    present = set(names.values())
    problems += [f"missing key {PEFT_PREFIX}{name}" for name in params if name not in present]
    for key, name in names.items():
        if name in params and arrays[key].shape != params[name].shape:
            problems.append(f"{key}: shape {arrays[key].shape}, but the model's is "
                            f"{params[name].shape} (a different rank or model size?)")
        elif name in params and arrays[key].dtype.kind != "f":
            problems.append(f"{key}: dtype {arrays[key].dtype}, expected a floating array")
    if problems:
        raise CheckpointError(f"{path} does not fit the adapter of {type(model).__name__}:\n  "
                              + "\n  ".join(problems))
    for key, name in names.items():
        p = params[name]
        p.data = np.array(arrays[key], dtype=p.dtype, copy=True)
