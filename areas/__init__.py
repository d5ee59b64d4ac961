"""The administrative area tree (province, district, commune, hamlet), as data."""
