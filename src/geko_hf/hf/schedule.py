"""Keep the user's LR schedule and HF's step counts truthful when GEKO epochs shrink.

HF computes `max_steps` and builds the scheduler once, from the first epoch's length. When later epochs
are shorter the run would end with steps "left" and the LR never reaching its end value. We warp the
scheduler's time axis instead of rebuilding it: at each epoch start the remaining real steps (this epoch
exactly, later epochs projected at this epoch's length, an upper bound because epochs only shrink) are
mapped linearly onto the remaining schedule steps. The LR stays continuous, warmup keeps its length in
real steps (a ratio warmup is that share of the real run, as HF documents it: issue 33), and at the last step of the
last epoch (known exactly) the schedule reaches its end.
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
        self.slope0 = 1.0  # virtual steps per real step before the anchor (warmup; saved states without it: 1)

    def virtual(self, step: float) -> float:
        if step <= self.r0:  # before the anchor (warmup)
            return self.v0 + (step - self.r0) * self.slope0
        if step >= self.r1:
            return self.v1
        return self.v0 + (step - self.r0) * (self.v1 - self.v0) / (self.r1 - self.r0)

    def retarget(self, step: int, end_step: int, warmup_steps: int, warmup_virtual: int | None = None) -> None:
        """Real step `end_step` maps to the schedule's end; warmup ends at real step `warmup_steps`, which is the
        schedule's step `warmup_virtual` (the same for a warmup in steps; for a ratio the share of the full-data
        count the schedule was built with, while `warmup_steps` is that share of the real run)."""
        v = self.virtual(step)
        end_virtual = float(warmup_steps if warmup_virtual is None else warmup_virtual)
        if step < warmup_steps and v < end_virtual:  # still warming up: reach the warmup's end on time
            self.slope0 = (end_virtual - v) / (warmup_steps - step)
            step, v = float(warmup_steps), end_virtual
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


def retarget(scheduler, step: int, end_step: int, warmup_steps: int, warmup_virtual: int | None = None) -> None:
    """Make the schedule end at real step `end_step`, continuing smoothly from `step` (see WarpedLambda.retarget)."""
    for f in getattr(scheduler, "lr_lambdas", []):
        if isinstance(f, WarpedLambda):
            f.retarget(step, end_step, warmup_steps, warmup_virtual)

