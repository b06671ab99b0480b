"""The images: ``ImageRecord`` / ``ReidDataset`` (records), the readers of Market-1501,
DukeMTMC-reID, MSMT17 and synthetic folders (readers), and the synthetic camera network
that stands in for them (synthetic/)."""
