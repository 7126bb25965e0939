"""Clients at risk: how likely each active client is to be overdue by more than 7 days at their
next milestone, from what the engine already knows.

The model is a logistic regression, fitted on the account's own history and shown whole:

- One training row per past month of every client: the features as they stood 3 days before
  the month's milestone (only what was known then), and whether the month then ended up
  overdue: not delivered by its milestone + 7 days (a skipped month is left out).
- The features (`FEATURES`) are standardised (mean 0, standard deviation 1 over the training
  rows), and the weights fitted by Newton's method with a small L2 penalty (`PENALTY`), so that
  a weight says how many units of log-odds one standard deviation of its feature adds.
- "At risk" is a probability at or above the threshold that gave the best F1 score on the
  training rows (at least `MIN_THRESHOLD`).
- A client's reasons are the features that push their score up the most (weight x
  standardised value), in words.
- Each active client's score is kept (`client_risks`), and that kept score is the one fact
  every surface shows and the at-risk check-in decides on: `refresh` writes it (after each
  training, for everyone daily, and for a client just before their check-in is decided),
  `kept_scores` reads it.

No library is needed: seven weights, a few thousand rows (a larger history is sampled down to
`MAX_ROWS`, with a fixed seed)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from scheduler import rules
from scheduler.engine import Context
from scheduler.errors import Conflict
from scheduler.models import Automation, Client, ClientRisk, Deliverable, Hold, RiskModel
from scheduler.vocab import AutomationType, DeliverableStatus, Source

OVERDUE_DAYS = 7
LOOK_AHEAD_DAYS = 3  # a training row sees what was known this long before the milestone
PENALTY = 1.0
MAX_ROWS = 20_000
MIN_THRESHOLD = 0.2
MIN_ROWS = 20  # fewer past months than this: no model (too little history to learn from)


@dataclass(frozen=True)
class Feature:
    code: str
    name: str
    reason: str  # what a high value says, for a client's reasons


FEATURES = (
    Feature("late_share", "Past months overdue", "earlier months ran more than 7 days late"),
    Feature(
        "open_days",
        "Days to open a deliverable",
        "takes long to open deliverables",
    ),
    Feature("unopened_share", "Deliverables unopened after 3 days", "often leaves emails unread"),
    Feature("rejections", "Rejected deliverables", "deliverables had to be redone"),
    Feature("holds", "Holds taken", "has paused the journey"),
    Feature(
        "days_since_visit", "Days since last portal visit", "has not visited the portal lately"
    ),
    Feature("new_client", "No past month yet", "no history yet"),
)


# -- what happened, per client and month ---------------------------------------------------------


@dataclass
class MonthFact:
    milestone: datetime | None = None  # the planned generation's moment (moved by holds)
    delivered_at: datetime | None = None
    opened_at: datetime | None = None
    skipped: bool = False
    rejections: list[datetime] = field(default_factory=list)


@dataclass
class ClientFacts:
    id: int
    start: datetime
    active: bool
    holds: list[datetime] = field(default_factory=list)
    months: dict[int, MonthFact] = field(default_factory=dict)

    def month(self, number: int) -> MonthFact:
        return self.months.setdefault(number, MonthFact())


def facts(ctx: Context, ids: Sequence[int] | None = None) -> dict[int, ClientFacts]:
    """Every client's months as the engine recorded them (a few bulk queries)."""

    def only(query: Any, column: Any) -> Any:
        return query if ids is None else query.where(column.in_(ids))

    found: dict[int, ClientFacts] = {}
    for cid, start, paused, completed in ctx.session.execute(
        only(
            select(Client.id, Client.start_date, Client.paused_at, Client.completed_at),
            Client.id,
        )
    ):
        begin = datetime(start.year, start.month, start.day, tzinfo=UTC)
        found[cid] = ClientFacts(cid, begin, paused is None and completed is None)
    for cid, month, at in ctx.session.execute(
        only(
            select(Automation.client_id, Automation.month, Automation.trigger_at).where(
                Automation.type == AutomationType.GENERATE_DELIVERABLE,
                Automation.source == Source.PLAN,
            ),
            Automation.client_id,
        )
    ):
        if cid in found and month:
            found[cid].month(month).milestone = at
    for cid, month, status, delivered, opened, reviewed in ctx.session.execute(
        only(
            select(
                Deliverable.client_id,
                Deliverable.month,
                Deliverable.status,
                Deliverable.delivered_at,
                Deliverable.opened_at,
                Deliverable.reviewed_at,
            ),
            Deliverable.client_id,
        )
    ):
        if cid not in found:
            continue
        fact = found[cid].month(month)
        if status == DeliverableStatus.DELIVERED:
            fact.delivered_at, fact.opened_at = delivered, opened
        elif status == DeliverableStatus.SKIPPED:
            fact.skipped = True
        elif status == DeliverableStatus.REJECTED and reviewed is not None:
            fact.rejections.append(reviewed)
    for cid, started in ctx.session.execute(
        only(select(Hold.client_id, Hold.started_at), Hold.client_id)
    ):
        if cid in found:
            found[cid].holds.append(started)
    return found


def overdue(fact: MonthFact, now: datetime) -> bool | None:
    """Whether the month ran more than 7 days past its milestone undelivered (None: not known
    yet, or not a month that counts)."""
    if fact.milestone is None or fact.skipped:
        return None
    limit = fact.milestone + timedelta(days=OVERDUE_DAYS)
    if fact.delivered_at is not None and fact.delivered_at <= limit:
        return False
    if limit > now:
        return None  # still in time
    return True


def features(client: ClientFacts, at: datetime) -> list[float]:
    """The client's features as they stood at `at` (nothing later is looked at)."""
    past = [
        f
        for f in client.months.values()
        if f.milestone is not None and f.milestone + timedelta(days=OVERDUE_DAYS) <= at
    ]
    outcomes = [o for o in (overdue(f, at) for f in past) if o is not None]
    late_share = sum(outcomes) / len(outcomes) if outcomes else 0.0
    delivered = [f for f in client.months.values() if f.delivered_at and f.delivered_at <= at]
    waits, unopened = [], 0
    for f in delivered:
        assert f.delivered_at is not None
        opened = f.opened_at if f.opened_at and f.opened_at <= at else None
        end = opened or at
        waits.append(min(30.0, (end - f.delivered_at).total_seconds() / 86400))
        if end - f.delivered_at > timedelta(days=3):  # opened late, or not yet after 3 days
            unopened += 1
    open_days = sum(waits) / len(waits) if waits else 0.0
    unopened_share = unopened / len(delivered) if delivered else 0.0
    rejections = sum(1 for f in client.months.values() for r in f.rejections if r <= at)
    holds = sum(1 for h in client.holds if h <= at)
    opens = [f.opened_at for f in client.months.values() if f.opened_at and f.opened_at <= at]
    last = max(opens) if opens else client.start
    since = min(60.0, max(0.0, (at - last).total_seconds() / 86400))
    return [
        late_share,
        open_days,
        unopened_share,
        float(rejections),
        float(holds),
        since,
        0.0 if outcomes or delivered else 1.0,
    ]


def training_rows(
    all_facts: dict[int, ClientFacts], now: datetime, *, before: datetime | None = None
) -> list[tuple[list[float], bool, int, int]]:
    """(features 3 days before the milestone, overdue?, client, month) for every past month
    whose outcome is known at `now`; with `before`, only months looked at before it."""
    rows = []
    for client in all_facts.values():
        for number, fact in sorted(client.months.items()):
            if fact.milestone is None:
                continue
            at = fact.milestone - timedelta(days=LOOK_AHEAD_DAYS)
            if before is not None and at >= before:
                continue
            outcome = overdue(fact, now)
            if outcome is None:
                continue
            rows.append((features(client, at), outcome, client.id, number))
    return rows


# -- the fit ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    weights: list[float]  # the intercept, then one per feature (standardised)
    means: list[float]
    scales: list[float]
    threshold: float
    rows: int
    positives: int
    precision: float | None  # on the training rows, at the threshold
    recall: float | None

    def standardise(self, x: Sequence[float]) -> list[float]:
        return [(v - m) / s for v, m, s in zip(x, self.means, self.scales, strict=True)]

    def probability(self, x: Sequence[float]) -> float:
        z = self.weights[0] + sum(
            w * v for w, v in zip(self.weights[1:], self.standardise(x), strict=True)
        )
        return sigmoid(z)

    def score(self, x: Sequence[float]) -> rules.Risk:
        """The score of a client with features `x`: the probability (to 4 places, as it is
        kept, so that "at risk" is decided on the very number every surface shows), "at risk"
        from the threshold on, and the reasons of a client at risk."""
        p = round(self.probability(x), 4)
        found = rules.Risk(p, self.threshold)
        return rules.Risk(p, self.threshold, tuple(self.reasons(x))) if found.at_risk else found

    def reasons(self, x: Sequence[float], limit: int = 3) -> list[str]:
        """The features that raise this client's score the most, in words."""
        pushes = sorted(
            (
                (w * v, feature)
                for w, v, feature in zip(
                    self.weights[1:], self.standardise(x), FEATURES, strict=True
                )
            ),
            key=lambda pair: -pair[0],
        )
        return [feature.reason for push, feature in pushes[:limit] if push > 0.25]

    def as_dict(self) -> dict[str, Any]:
        return {
            "weights": self.weights,
            "means": self.means,
            "scales": self.scales,
            "threshold": self.threshold,
            "rows": self.rows,
            "positives": self.positives,
            "precision": self.precision,
            "recall": self.recall,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Model:
        return cls(**data)


def sigmoid(z: float) -> float:
    if z < -35:
        return 0.0
    if z > 35:
        return 1.0
    return 1 / (1 + math.exp(-z))


def solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Solve a x = b (a small symmetric positive definite system), Gaussian elimination."""
    n = len(b)
    m = [[*row[:], b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        if abs(m[col][col]) < 1e-12:
            continue
        for r in range(n):
            if r != col:
                factor = m[r][col] / m[col][col]
                for c in range(col, n + 1):
                    m[r][c] -= factor * m[col][c]
    return [m[i][n] / m[i][i] if abs(m[i][i]) > 1e-12 else 0.0 for i in range(n)]


def fit(xs: list[list[float]], ys: list[bool]) -> Model:
    """Logistic regression by Newton's method on standardised features, L2-penalised (not the
    intercept); the threshold that maximises F1 on the training rows."""
    if len(xs) > MAX_ROWS:
        picked = random.Random(16).sample(range(len(xs)), MAX_ROWS)
        xs, ys = [xs[i] for i in picked], [ys[i] for i in picked]
    k = len(FEATURES)
    n = len(xs)
    means = [sum(x[j] for x in xs) / n for j in range(k)]
    scales = []
    for j in range(k):
        var = sum((x[j] - means[j]) ** 2 for x in xs) / n
        scales.append(math.sqrt(var) if var > 1e-12 else 1.0)
    zs = [[1.0] + [(x[j] - means[j]) / scales[j] for j in range(k)] for x in xs]
    w = [0.0] * (k + 1)
    for _ in range(25):
        grad = [0.0] * (k + 1)
        hess = [[0.0] * (k + 1) for _ in range(k + 1)]
        for z, y in zip(zs, ys, strict=True):
            p = sigmoid(sum(wi * zi for wi, zi in zip(w, z, strict=True)))
            err = p - (1.0 if y else 0.0)
            curve = max(p * (1 - p), 1e-9)
            for i in range(k + 1):
                grad[i] += err * z[i]
                zi = curve * z[i]
                row = hess[i]
                for j in range(i, k + 1):
                    row[j] += zi * z[j]
        for i in range(k + 1):
            for j in range(i):
                hess[i][j] = hess[j][i]
            if i:
                grad[i] += PENALTY * w[i]
                hess[i][i] += PENALTY
        step = solve(hess, grad)
        w = [wi - si for wi, si in zip(w, step, strict=True)]
        if max(abs(s) for s in step) < 1e-6:
            break
    model = Model(w, means, scales, 0.5, n, sum(ys), None, None)
    scored = [(model.probability(x), y) for x, y in zip(xs, ys, strict=True)]
    best = (0.0, 0.5)
    for t in [i / 20 for i in range(int(MIN_THRESHOLD * 20), 20)]:
        f1 = quality(scored, t)[2]
        if f1 > best[0]:
            best = (f1, t)
    precision, recall, _ = quality(scored, best[1])
    return Model(w, means, scales, best[1], n, sum(ys), precision, recall)


def quality(scored: list[tuple[float, bool]], threshold: float) -> tuple[float, float, float]:
    """(precision, recall, F1) of "at risk" = probability >= threshold."""
    tp = sum(1 for p, y in scored if p >= threshold and y)
    fp = sum(1 for p, y in scored if p >= threshold and not y)
    fn = sum(1 for p, y in scored if p < threshold and y)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


# -- the account's model and its scores ------------------------------------------------------------


def train(ctx: Context, actor: str) -> RiskModel:
    """Fit the model on the account's history, keep it, and score every active client with it
    (`refresh`)."""
    now = ctx.now()
    known = facts(ctx)
    rows = training_rows(known, now)
    if len(rows) < MIN_ROWS or not any(r[1] for r in rows) or all(r[1] for r in rows):
        raise Conflict(
            f"not enough history to learn from: {len(rows)} past months with a known outcome, "
            f"{sum(r[1] for r in rows)} of them overdue (needs {MIN_ROWS}, some of each)"
        )
    model = fit([r[0] for r in rows], [r[1] for r in rows])
    kept = RiskModel(trained_at=now, actor=actor, body=model.as_dict())
    ctx.session.add(kept)
    ctx.session.flush()
    write_scores(ctx, kept, known, None)
    return kept


def latest(ctx: Context) -> RiskModel | None:
    return ctx.session.scalars(select(RiskModel).order_by(RiskModel.id.desc()).limit(1)).first()


def next_month(client: ClientFacts, now: datetime) -> int | None:
    """The month the client works on: the first neither delivered nor skipped."""
    for number in sorted(client.months):
        fact = client.months[number]
        if fact.delivered_at is None and not fact.skipped and fact.milestone is not None:
            return number
    return None


# -- the kept scores: the one risk every surface shows and the check-in decides on ---------------


def refresh(ctx: Context, ids: Sequence[int] | None = None) -> int:
    """Score these clients (None: every client) again: the latest model applied to what is
    known now, kept in `client_risks` (scored now); a client no longer active, or with no month
    ahead, loses their row. Nothing without a model. Returns how many clients were scored.

    Run for every client daily (`tasks.actors.refresh_risk`) and after each training, and for
    a batch's clients when their at-risk check-ins run, just before they are decided."""
    kept = latest(ctx)
    if kept is None:
        return 0
    if ids is None:
        return write_scores(ctx, kept, facts(ctx), None)
    wanted = sorted(set(ids))
    known: dict[int, ClientFacts] = {}
    for chunk in chunks(wanted):
        known |= facts(ctx, chunk)
    return write_scores(ctx, kept, known, wanted)


def chunks(ids: Sequence[int], size: int = 1000) -> list[list[int]]:
    """`ids` in chunks of at most `size`, so that a query's bound parameters stay few."""
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


def write_scores(
    ctx: Context, kept: RiskModel, known: dict[int, ClientFacts], ids: list[int] | None
) -> int:
    """Score the clients of `known` with the kept model and upsert their rows (in client order,
    so that two refreshes at once wait for each other rather than deadlock); delete the rows of
    the clients among `ids` (None: all) who are no longer scored."""
    model = Model.from_dict(kept.body)
    now = ctx.now()
    rows = []
    for client in sorted(known.values(), key=lambda c: c.id):
        month = next_month(client, now) if client.active else None
        if month is None:
            continue
        x = features(client, now)
        scored = model.score(x)
        rows.append(
            {
                "client_id": client.id,
                "model_id": kept.id,
                "scored_at": now,
                "month": month,
                "probability": scored.probability,
                "at_risk": scored.at_risk,
                "features": x,
                "reasons": list(scored.reasons),
            }
        )
    held = select(ClientRisk.client_id)
    if ids is None:
        kept_ids = set(ctx.session.scalars(held))
    else:
        kept_ids = set()
        for chunk in chunks(ids):
            kept_ids |= set(ctx.session.scalars(held.where(ClientRisk.client_id.in_(chunk))))
    for gone in chunks(sorted(kept_ids - {r["client_id"] for r in rows})):
        ctx.session.execute(delete(ClientRisk).where(ClientRisk.client_id.in_(gone)))
    if rows:
        ctx.session.execute(upsert(ctx), rows)
    return len(rows)


def upsert(ctx: Context) -> Any:
    """INSERT … ON CONFLICT (client_id) DO UPDATE for `client_risks` (PostgreSQL and SQLite
    alike)."""
    dialect = ctx.session.get_bind().dialect.name
    make = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = make(ClientRisk)
    changed = ("model_id", "scored_at", "month", "probability", "at_risk", "features", "reasons")
    return statement.on_conflict_do_update(
        index_elements=[ClientRisk.client_id],
        set_={name: statement.excluded[name] for name in changed},
    )


def kept_scores(ctx: Context, ids: Sequence[int]) -> dict[int, rules.Risk]:
    """Each of these clients' kept score (those who have one): what the clients list, the
    journey page, the API and the check-in all show and decide on."""
    found: dict[int, rules.Risk] = {}
    for chunk in chunks(sorted(set(ids))):
        found |= dict(read_scores(ctx, ClientRisk.client_id.in_(chunk)))
    return found


def at_risk(ctx: Context, limit: int = 200) -> list[tuple[rules.Risk, Client]]:
    """The clients whose kept score is at risk, most likely first."""
    found = read_scores(
        ctx,
        ClientRisk.at_risk.is_(True),
        order=(ClientRisk.probability.desc(), ClientRisk.client_id),
        limit=limit,
    )
    named = select(Client).where(Client.id.in_([cid for cid, _ in found]))
    clients = {c.id: c for c in ctx.session.scalars(named)}
    return [(r, clients[cid]) for cid, r in found]


def read_scores(
    ctx: Context, where: Any, *, order: Sequence[Any] = (), limit: int | None = None
) -> list[tuple[int, rules.Risk]]:
    """Kept rows as scores, with their model's threshold (read as columns: a refresh writes
    them with one statement, past any row the session may hold)."""
    query = (
        select(
            ClientRisk.client_id,
            ClientRisk.model_id,
            ClientRisk.probability,
            ClientRisk.reasons,
            ClientRisk.month,
            ClientRisk.scored_at,
        )
        .where(where)
        .order_by(*order)
        .limit(limit)
    )
    rows = list(ctx.session.execute(query))
    thresholds = {
        model_id: float(body["threshold"])
        for model_id, body in ctx.session.execute(
            select(RiskModel.id, RiskModel.body).where(
                RiskModel.id.in_({row.model_id for row in rows})
            )
        )
    }
    return [
        (
            row.client_id,
            rules.Risk(
                row.probability,
                thresholds[row.model_id],
                tuple(row.reasons or ()),
                row.month,
                row.scored_at,
            ),
        )
        for row in rows
    ]


def at_risk_ids() -> Any:
    """SQL: the ids of the clients whose kept score is at risk (the clients list filter)."""
    return select(ClientRisk.client_id).where(ClientRisk.at_risk.is_(True))


@dataclass(frozen=True)
class Weight:
    feature: Feature
    weight: float
    mean: float
    scale: float


def weights(kept: RiskModel) -> list[Weight]:
    """The model as people read it: each feature with its weight (per standard deviation)."""
    model = Model.from_dict(kept.body)
    return [
        Weight(f, round(w, 3), round(m, 3), round(s, 3))
        for f, w, m, s in zip(FEATURES, model.weights[1:], model.means, model.scales, strict=True)
    ]


# -- measured honestly ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    cutoff: datetime
    train_rows: int
    test_rows: int
    overdue: int  # test rows that ended overdue
    flagged: int
    precision: float
    recall: float
    base_rate: float
    model: Model


def evaluate(ctx: Context, cutoff: datetime, horizon_days: int = 60) -> Evaluation:
    """Train on what was known at `cutoff` only; then, for each month whose look-ahead moment
    falls in the `horizon_days` after it, predict from what was known then and compare with
    what then happened. Precision and recall of "at risk"."""
    known = facts(ctx)
    now = ctx.now()
    train_on = training_rows(known, cutoff, before=cutoff)
    model = fit([r[0] for r in train_on], [r[1] for r in train_on])

    def looked_at(row: tuple[Any, ...]) -> datetime:
        milestone = known[row[2]].months[row[3]].milestone
        assert milestone is not None
        return milestone - timedelta(days=LOOK_AHEAD_DAYS)

    tests = [
        r
        for r in training_rows(known, now, before=cutoff + timedelta(days=horizon_days))
        if looked_at(r) >= cutoff
    ]
    scored = [(model.probability(x), y) for x, y, _, _ in tests]
    precision, recall, _ = quality(scored, model.threshold)
    positives = sum(1 for _, y in scored if y)
    return Evaluation(
        cutoff,
        len(train_on),
        len(tests),
        positives,
        sum(1 for p, _ in scored if p >= model.threshold),
        precision,
        recall,
        positives / len(tests) if tests else 0.0,
        model,
    )
