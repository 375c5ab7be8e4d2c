"""The paper's tables as data: one module per table (``cfin.tables.TABLE_MODULES``).

Each module defines ``TABLE`` (a :class:`cfin.tables.Table`: rows, each row's CFIN variant
and the paper's printed numbers, datasets, recipe, tolerances, notes) and ``SEARCHES``
(the grids :mod:`ablations.fit` scanned to find the configs the paper does not print).
"""
