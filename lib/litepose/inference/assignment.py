"""Minimum-cost assignment that picks, among equal-cost optima, the one the release picks.

The release groups joints with ``munkres.Munkres().compute`` (the pure-Python ``munkres``
package, version 1.1.4). Its grouping cost, ``round(distance) * 100 - score``, is coarse, so
several assignments often share the minimum cost, and which of them a solver returns decides
which detections end up in which person. Any other optimal solver (scipy's, for one) breaks
those ties its own way and produces other people. ``munkres_assignment`` returns exactly the
pairs ``Munkres().compute(cost.tolist())`` returns, ties included, for any finite float cost
matrix of any shape, and is much faster.

Exactness rests on performing the same decisions and the same floating-point operations:

* A rectangular matrix is padded to square with zeros; only pairs inside the original
  matrix are returned, in row order (so a tall matrix leaves some rows unassigned).
* Step 1 subtracts each row's minimum from its row.
* Step 2 stars, row by row, the first zero (lowest column) whose column holds no star yet.
* Step 3 covers the columns holding stars; ``n`` covered columns end the search.
* Step 4 looks for an uncovered zero starting at the row of the previous find (at first,
  row 0) and scans rows cyclically from there; inside the first row that has one it takes
  the *last* uncovered zero met when scanning columns cyclically from the previous find's
  column (the package's scan does not stop at the first hit): the highest such column below
  that column if there is one, else the highest of all. The zero is primed; if its row holds
  a star, the row is covered, the star's column uncovered and the scan resumes at
  (this row, the star's column); otherwise step 5 starts from it.
* Step 5 follows star (in the prime's column) and prime (in the star's row) alternately,
  swaps stars and primes along that path, erases all primes and uncovers everything.
* Step 6 takes the smallest uncovered value ``m`` (the package starts its search from
  ``sys.maxsize``, so ``m`` never exceeds ``float(sys.maxsize)``), adds ``m`` to every covered
  row, *then* subtracts ``m`` from every uncovered column, two roundings per element as in
  the package, so that ``(c + m) - m`` can vanish exactly where the package's does, and
  step 4 restarts at row 0, column 0.

The arithmetic of steps 1 and 6 and the zero tests are whole-matrix numpy operations in
float64 (the package's Python floats). The searches of steps 2 and 4 work on bit sets (Python
ints): each row's zero columns, each column's zero rows, the uncovered columns and the rows
holding an uncovered zero, so a search costs a few integer operations instead of a pass over
the elements. Non-finite costs are refused (the package can loop forever on them).
"""

import sys

import numpy as np

# The package's smallest-value search starts from sys.maxsize; float arithmetic sees it so.
_MIN_START = float(sys.maxsize)


def _bit_sets(zero):
    """Per row of a boolean matrix, its True columns as a bit set (Python int, bit j = column j)."""
    rows, cols = zero.shape
    words = (cols + 63) // 64
    padded = np.zeros((rows, words * 64), bool)
    padded[:, :cols] = zero
    packed = np.packbits(padded, axis=1, bitorder="little").view("<u8")
    sets = packed[:, 0].tolist()
    for word in range(1, words):
        sets = [low | high << (64 * word) for low, high in zip(sets, packed[:, word].tolist())]
    return sets


def _mask(bits, n):
    """Boolean array of the first ``n`` bits of the Python int ``bits``."""
    return np.unpackbits(np.frombuffer(bits.to_bytes((n + 7) // 8, "little"), np.uint8),
                         count=n, bitorder="little").view(bool)


def _lowest(bits):
    """Index of the lowest set bit of a nonzero Python int."""
    return (bits & -bits).bit_length() - 1


def munkres_assignment(cost):
    """The pairs ``munkres.Munkres().compute(cost.tolist())`` (version 1.1.4) returns.

    Args:
        cost: ``[rows, cols]`` finite costs (any real dtype; computed in float64).

    Returns:
        ``(rows, cols)`` int64 arrays of the assigned pairs, in increasing row order:
        ``min(rows, cols)`` pairs, every row when ``rows <= cols``. An empty matrix gives no
        pairs (the package raises on zero rows).
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2:
        raise ValueError(f"cost must be a 2-D matrix, got shape {cost.shape}")
    num_rows, num_cols = cost.shape
    if cost.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if not np.isfinite(cost).all():
        raise ValueError("cost must be finite")
    n = max(num_rows, num_cols)
    if num_rows == num_cols:
        matrix = cost.copy()
    else:
        matrix = np.zeros((n, n), np.float64)
        matrix[:num_rows, :num_cols] = cost
    matrix -= matrix.min(axis=1, keepdims=True)  # step 1
    zero = matrix == 0
    zero_rows = _bit_sets(zero)  # per row, its zero columns
    zero_cols = None  # per column, its zero rows (built when step 4 first needs them)
    full = (1 << n) - 1

    # Step 2: greedy stars in row-major order.
    star_col = [-1] * n  # per row
    star_row = [-1] * n  # per column
    starred = 0  # bit set of the columns holding a star
    for i in range(n):
        free = zero_rows[i] & ~starred
        if free:
            j = _lowest(free)
            star_col[i], star_row[j] = j, i
            starred |= 1 << j

    while starred != full:  # step 3: the starred columns are covered; all n of them: done
        open_cols = full & ~starred  # uncovered columns
        covered = 0  # covered rows
        prime_col = {}  # per row
        if zero_cols is None:
            zero_cols = _bit_sets(zero.T)
        # Rows holding an uncovered zero (in an uncovered row).
        candidates = 0
        for j in range(n):
            if open_cols >> j & 1:
                candidates |= zero_cols[j]
        row = col = 0
        while True:
            # Step 4: the package's scan: first row from ``row`` on (cyclically) with an
            # uncovered zero, in it the last one met from column ``col`` on (cyclically).
            if not candidates:
                # Step 6, then step 4 again from the top-left corner.
                covered_rows = _mask(covered, n)
                open_mask = _mask(open_cols, n)
                smallest = min(float(np.min(matrix, where=open_mask & ~covered_rows[:, None], initial=np.inf)),
                               _MIN_START)
                # Adding or subtracting 0.0 changes nothing: one pass each, the package's two roundings.
                matrix += np.where(covered_rows, smallest, 0.0)[:, None]
                matrix -= np.where(open_mask, smallest, 0.0)
                zero = matrix == 0
                zero_rows, zero_cols = _bit_sets(zero), _bit_sets(zero.T)
                candidates = 0
                for j in range(n):
                    if open_cols >> j & 1:
                        candidates |= zero_cols[j]
                candidates &= ~covered
                row = col = 0
                continue
            later = candidates >> row << row
            found = _lowest(later or candidates)
            hits = zero_rows[found] & open_cols
            before = hits & ((1 << col) - 1)
            zero_col = (before or hits).bit_length() - 1
            prime_col[found] = zero_col
            if star_col[found] >= 0:
                # Cover the row, uncover its star's column, resume the scan there.
                row, col = found, star_col[found]
                covered |= 1 << found
                open_cols |= 1 << col
                candidates = (candidates | zero_cols[col]) & ~covered
                continue
            # Step 5: from this prime, star in its column, prime in that star's row, ...;
            # primes become stars (the last one in a column that held none).
            path_row, path_col = found, zero_col
            while True:
                next_row = star_row[path_col]
                star_col[path_row], star_row[path_col] = path_col, path_row
                if next_row < 0:
                    starred |= 1 << path_col
                    break
                path_row, path_col = next_row, prime_col[next_row]
            break

    rows = [i for i in range(num_rows) if star_col[i] < num_cols]
    return np.array(rows, np.int64), np.array([star_col[i] for i in rows], np.int64)
