"""Evolutionary architecture search under a cost budget (the release's search).

Each generation keeps the best ``parent_ratio`` of the population as parents and fills
the population again with mutants (``mutation_ratio`` of it, each gene redrawn with
``mutate_prob``) and crossovers of two parents. Every child must fit the budget; a child
that does not is drawn again. Scores are cached per architecture, and the whole state is
written after every evaluation, so a killed search resumes where it stopped.
"""

import json
import math
import os
import random
from dataclasses import asdict, dataclass

from tqdm import tqdm

from ..errors import LitePoseError
from ..utils.common import rng_state_from_lists, rng_state_to_lists
from ..utils.io import atomic_write_text, load_json

STATE_VERSION = 1
MAX_STATE_BYTES = 256 * 2**20


class SearchError(LitePoseError):
    """The search cannot proceed (budget unreachable, incompatible state file)."""


@dataclass
class Candidate:
    arch: dict
    score: float
    cost: float


def arch_key(arch):
    return json.dumps(arch, sort_keys=True)


def _is_score(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _candidate(entry, validate_arch):
    if not isinstance(entry, dict) or set(entry) != {"arch", "score", "cost"}:
        raise ValueError("a candidate must be an object with 'arch', 'score' and 'cost'")
    if not _is_score(entry["score"]) or not _is_score(entry["cost"]):
        raise ValueError("a candidate's 'score' and 'cost' must be numbers")
    validate_arch(entry["arch"], source="a candidate's arch")  # ArchError names the field
    return Candidate(**entry)


class EvolutionSearch:
    """Search ``space`` for the architecture with the highest ``score_fn(arch)`` among those
    with ``cost_fn(arch) <= budget``.

    Args:
        space: a ``SearchSpace``.
        score_fn: architecture -> accuracy-like score (higher is better), e.g. val AP.
        cost_fn: architecture -> cost (MACs, or predicted latency).
        budget: the largest cost accepted.
        state_path: JSON file to resume from and to keep up to date (optional).
        on_generation: callback ``(generation, best: Candidate)`` after each generation.
        scored: what the scores depend on beyond the settings (the supernet checkpoint's hash,
            the data, the scorer's settings), a JSON-able dict; a state file that recorded
            another refuses to resume, so a retrained supernet never reuses stale scores.
    """

    def __init__(self, space, score_fn, cost_fn, budget, population_size=40, generations=40,
                 parent_ratio=0.25, mutation_ratio=0.5, mutate_prob=0.1, seed=0, max_tries=2000,
                 state_path=None, on_generation=None, progress=True, scored=None):
        if population_size < 2 or generations < 0:
            raise SearchError("population must be at least 2 and generations not negative")
        if not (0 < parent_ratio <= 1 and 0 <= mutation_ratio <= 1 and 0 <= mutate_prob <= 1):
            raise SearchError("parent_ratio must lie in (0, 1], mutation_ratio and mutate_prob in [0, 1]")
        self.space = space
        self.score_fn = score_fn
        self.cost_fn = cost_fn
        self.budget = budget
        self.population_size = population_size
        self.generations = generations
        self.parents_size = max(1, int(round(parent_ratio * population_size)))
        self.mutation_count = int(round(mutation_ratio * population_size))
        self.mutate_prob = mutate_prob
        self.max_tries = max_tries
        self.state_path = state_path
        self.on_generation = on_generation
        self.progress = progress
        self.settings = dict(budget=budget, population_size=population_size, generations=generations,
                             parent_ratio=parent_ratio, mutation_ratio=mutation_ratio,
                             mutate_prob=mutate_prob, seed=seed, scored=dict(scored or {}))
        self.resumed = False    # whether the search continues from state_path
        self.rng = random.Random(seed)
        self.scores = {}        # arch key -> score (cache, survives restarts)
        self.generation = 0     # generations completed
        self.population = []    # list of Candidate
        self.history = []       # best candidate per completed generation
        self.generation_rng = self.rng.getstate()
        if state_path and os.path.isfile(state_path):
            self._load_state()

    # -- state ---------------------------------------------------------------------------
    def _load_state(self):
        from ..arch import validate_arch

        state = load_json(self.state_path, SearchError, "search state file", max_bytes=MAX_STATE_BYTES)
        not_a_state = (f"{self.state_path}: not a search state of tools/search.py; use another --state file "
                       "or remove it to start afresh")
        if not isinstance(state, dict):
            raise SearchError(f"{not_a_state} (it holds a JSON {type(state).__name__})")
        if state.get("version") != STATE_VERSION or state.get("settings") != self.settings:
            recorded = state.get("settings") if isinstance(state.get("settings"), dict) else {}
            differ = sorted(k for k in set(recorded) | set(self.settings) if recorded.get(k) != self.settings.get(k))
            if "scored" in differ:
                before, now = recorded.get("scored") or {}, self.settings["scored"]
                differ.remove("scored")
                differ += sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
            raise SearchError(f"{self.state_path} holds a search of other settings or inputs (differing: "
                              f"{', '.join(differ) or 'version'}); its scores would be stale: use another "
                              "--state file or remove it to start afresh")
        try:
            scores = state["scores"]
            if not isinstance(scores, dict) or not all(_is_score(v) for v in scores.values()):
                raise ValueError("'scores' must map architectures to numbers")
            generation = state["generation"]
            if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
                raise ValueError(f"'generation' must be a count, got {generation!r}")
            population = [_candidate(c, validate_arch) for c in state["population"]]
            history = [_candidate(c, validate_arch) for c in state["history"]]
            generation_rng = rng_state_from_lists(state["generation_rng"])
            random.Random().setstate(generation_rng)  # a damaged generator state fails here, not later
        except (KeyError, TypeError, ValueError) as exc:
            detail = f"no '{exc.args[0]}'" if isinstance(exc, KeyError) else str(exc).splitlines()[0][:200]
            raise SearchError(f"{not_a_state} ({detail})") from None
        self.scores, self.generation = dict(scores), generation
        self.population, self.history, self.generation_rng = population, history, generation_rng
        self.resumed = True

    def _save_state(self):
        if not self.state_path:
            return
        state = {
            "version": STATE_VERSION, "settings": self.settings, "generation": self.generation,
            "population": [asdict(c) for c in self.population], "history": [asdict(c) for c in self.history],
            "generation_rng": rng_state_to_lists(self.generation_rng), "scores": self.scores,
        }
        atomic_write_text(self.state_path, json.dumps(state))

    # -- candidates ----------------------------------------------------------------------
    def _check_reachable(self):
        smallest = self.space.smallest()
        cost = self.cost_fn(smallest)
        if cost > self.budget:
            raise SearchError(f"even the smallest architecture costs {cost:.4g} where the budget is "
                              f"{self.budget:.4g} (in the cost function's unit): the budget is below what the "
                              "search space can reach")

    def _within_budget(self, make):
        for _ in range(self.max_tries):
            arch = make()
            cost = self.cost_fn(arch)
            if cost <= self.budget:
                return arch, cost
        raise SearchError(f"no architecture within the budget {self.budget:g} after {self.max_tries} draws: "
                          "the budget is below what the search space can reach")

    def _evaluate(self, arch, cost):
        key = arch_key(arch)
        if key not in self.scores:
            score = float(self.score_fn(arch))
            self.scores[key] = score if math.isfinite(score) else -math.inf
            self._save_state()
        return Candidate(arch=arch, score=self.scores[key], cost=float(cost))

    def _best(self):
        return max(self.population, key=lambda c: (c.score, -c.cost))

    def _children(self, parents):
        children = []
        for index in range(self.population_size):
            if index < self.mutation_count:
                parent = self.rng.choice(parents).arch
                arch, cost = self._within_budget(lambda: self.space.mutate(parent, self.mutate_prob, self.rng))
            else:
                first, second = self.rng.choice(parents).arch, self.rng.choice(parents).arch
                arch, cost = self._within_budget(lambda: self.space.crossover(first, second, self.rng))
            children.append(self._evaluate(arch, cost))
        return children

    # -- search --------------------------------------------------------------------------
    def run(self):
        """Run (or resume) the search; return the best ``Candidate`` found."""
        self._check_reachable()
        bar = tqdm(total=self.generations + 1, initial=min(self.generation, self.generations + 1),
                   desc="search generations", disable=not self.progress)
        try:
            if not self.population:
                self.rng.setstate(self.generation_rng)
                initial = [self._within_budget(lambda: self.space.sample(self.rng))
                           for _ in range(self.population_size)]
                self.population = [self._evaluate(arch, cost) for arch, cost in initial]
                self._finish_generation(bar)
            while self.generation <= self.generations:
                # Resuming mid-generation replays the same draws; cached scores make it cheap.
                self.rng.setstate(self.generation_rng)
                parents = sorted(self.population, key=lambda c: (c.score, -c.cost), reverse=True)
                parents = parents[: self.parents_size]
                self.population = parents + self._children(parents)
                self._finish_generation(bar)
        finally:
            bar.close()
        return self._best()

    def _finish_generation(self, bar):
        best = self._best()
        self.history.append(best)
        self.generation += 1
        self.generation_rng = self.rng.getstate()
        self._save_state()
        bar.update(1)
        bar.set_postfix(best_score=f"{best.score:.4f}", best_cost=f"{best.cost:.4g}")
        if self.on_generation:
            self.on_generation(self.generation - 1, best)
