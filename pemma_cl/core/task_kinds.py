"""What an experience of a stream trains: a segmentation task (Dice) or a prognosis task (RFS risk, C-index)."""

SEGMENTATION = "segmentation"
PROGNOSIS = "prognosis"
#: Every task kind, in display order (a stream file's ``kind``).
TASK_KINDS: tuple[str, ...] = (SEGMENTATION, PROGNOSIS)
