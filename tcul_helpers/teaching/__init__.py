"""What the notebooks use: ``LabSession`` (one profile's worlds, models and runs), the
widget explorers, the exercises' checkers, the fine-tuning probe, the notebook runner and
the JupyterLab settings."""
