"""Training loops as library code: ``fit``, its callbacks, checkpoints and curves.

    import chainrule as cr

    cr.manual_seed(0)
    model = cr.models.mlp(64, (256, 128), 10)
    history = cr.training.fit(
        model, cr.nn.CrossEntropyLoss(), cr.optim.Adam(model.parameters()), loader,
        epochs=20, val_loader=val_loader,
        callbacks=[cr.training.ModelCheckpoint("run/checkpoint.safetensors")],
    )

``chainrule train`` is ``fit`` with the callbacks of this package (progress bar,
per-epoch checkpoint, metrics file, curves, Ctrl-C) and a run directory around it.
"""

from chainrule.training.callbacks import (
    Callback,
    LearningCurves,
    MetricsLog,
    ModelCheckpoint,
    ProgressBar,
    StopOnInterrupt,
)
from chainrule.training.checkpoint import (
    checkpoint_epoch,
    load_checkpoint,
    restore_checkpoint,
    save_checkpoint,
)
from chainrule.training.curves import draw_curves, plot_curves
from chainrule.training.loop import (
    FitState,
    Interrupted,
    default_metrics,
    evaluate,
    fit,
)

__all__ = [
    "fit", "evaluate", "default_metrics", "FitState", "Interrupted",
    "Callback", "ProgressBar", "ModelCheckpoint", "MetricsLog", "LearningCurves",
    "StopOnInterrupt",
    "save_checkpoint", "load_checkpoint", "restore_checkpoint", "checkpoint_epoch",
    "plot_curves", "draw_curves",
]  # fmt: skip
