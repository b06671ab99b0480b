"""What every other group stands on: the error type and input checks, kill-safe files and
folder locks, devices and seeding, several processes under torchrun, progress bars, and how
a number is printed. Nothing here knows about re-identification."""
