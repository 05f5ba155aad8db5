"""Parts that methods compose: a teacher snapshot, labelled replay, and more (see method.py)."""
