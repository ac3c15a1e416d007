"""Keep the user's LR schedule and HF's step counts truthful when GEKO epochs shrink.

HF computes `max_steps` and builds the scheduler once, from the first epoch's length. When later epochs
are shorter the run would end with steps "left" and the LR never reaching its end value. We warp the
scheduler's time axis instead of rebuilding it: at each epoch start the remaining real steps (this epoch
exactly, later epochs projected at this epoch's length, an upper bound because epochs only shrink) are
mapped linearly onto the remaining schedule steps. The LR stays continuous, warmup keeps its length in
real steps, and at the last step of the last epoch (known exactly) the schedule reaches its end.
"""

from __future__ import annotations

from torch.optim.lr_scheduler import LambdaLR


class WarpedLambda:
    """lr_lambda(step) = original(virtual(step)), virtual piecewise linear in the real step.

    `original` lives in a slot, not in __dict__: LambdaLR.state_dict() saves each callable's __dict__ and HF
    reloads it with torch.load(weights_only=True), which accepts the float anchors but not a function. So
    the anchors ride along in scheduler.pt and a resumed run continues on the same warped schedule.
    """

    __slots__ = ("original", "__dict__")

    def __init__(self, original, total_steps: int):
        self.original = original
        self.r0 = self.v0 = 0.0  # anchor: real step r0 maps to virtual step v0
        self.r1 = self.v1 = float(total_steps)  # end: real r1 maps to the schedule's last step v1

    def virtual(self, step: float) -> float:
        if step <= self.r0:  # before the anchor (warmup): unit slope
            return self.v0 + (step - self.r0)
        if step >= self.r1:
            return self.v1
        return self.v0 + (step - self.r0) * (self.v1 - self.v0) / (self.r1 - self.r0)

    def retarget(self, step: int, end_step: int, warmup_steps: int) -> None:
        v = self.virtual(step)
        if step < warmup_steps and v == step:  # still warming up: warmup keeps its real length
            step = v = float(warmup_steps)
            end_step = max(end_step, warmup_steps)
        self.r0, self.v0, self.r1 = float(step), float(v), float(end_step)

    def __call__(self, step):
        return self.original(self.virtual(step))


def install_warp(scheduler, total_steps: int) -> bool:
    """Wrap a LambdaLR's lambdas once; False when the scheduler cannot be warped (e.g. ReduceLROnPlateau)."""
    if not isinstance(scheduler, LambdaLR):
        return False
    scheduler.lr_lambdas = [
        f if isinstance(f, WarpedLambda) else WarpedLambda(f, total_steps) for f in scheduler.lr_lambdas
    ]
    return True


def retarget(scheduler, step: int, end_step: int, warmup_steps: int) -> None:
    """Make the schedule end at real step `end_step`, continuing smoothly from `step`."""
    for f in getattr(scheduler, "lr_lambdas", []):
        if isinstance(f, WarpedLambda):
            f.retarget(step, end_step, warmup_steps)

