"""The real HECKTOR 2022 folder: layout, checks, cropping, preparation, loading."""
