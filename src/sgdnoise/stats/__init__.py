"""Statistics on NumPy arrays only: streaming moments, batch means, distributions and fits."""
