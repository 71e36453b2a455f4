"""The virtual-clock simulator behind `rollout simulate` and bench/."""
