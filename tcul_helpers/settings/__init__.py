"""Every setting of a run in one place: ``Config``, the profiles (smoke, classroom, paper),
the variants (TCUL, SUL, PUL-style) and each setting's valid values."""
