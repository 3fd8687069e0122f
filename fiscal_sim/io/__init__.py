"""Parquet outputs: typed, metadata-stamped tables, dimension tables, manifests, atomic run folders."""
