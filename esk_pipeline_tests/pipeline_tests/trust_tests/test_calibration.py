"""Calibration on audited labels: thresholds for a precision target, p_correct."""

import numpy as np
import pandas as pd

from esk_pipeline.pipeline.trust.calibration import fit_calibration, wilson_interval


def _audit(n: int, seed: int = 0, domain_of=lambda i: "roads") -> pd.DataFrame:
    """A tier whose labels at confidence c are right with probability c**2 (overconfident)."""
    rng = np.random.default_rng(seed)
    confidence = rng.random(n)
    right = rng.random(n) < confidence**2
    domains = [domain_of(i) for i in range(n)]
    return pd.DataFrame(
        {
            "row_id": [f"r{i}" for i in range(n)],
            "tier": "local",
            "confidence": confidence,
            "predicted": domains,
            "truth": [d if ok else "other" for d, ok in zip(domains, right, strict=True)],
        }
    )


def test_the_threshold_reaches_the_target_on_fresh_labels_of_the_same_tier() -> None:
    calibration = fit_calibration(_audit(2000), 0.9)
    tier = calibration.tiers["local"]
    # Right c**2 of the time: the labels at or above t are right about (1 - t**3) / (3 - 3t).
    assert tier.threshold is not None and 0.8 < tier.threshold < 0.95
    fresh = _audit(20_000, seed=1)
    accepted = calibration.accepted(fresh["tier"], fresh["confidence"], fresh["predicted"])
    precision = (fresh.loc[accepted, "predicted"] == fresh.loc[accepted, "truth"]).mean()
    assert precision >= 0.89
    assert tier.accepted_precision >= 0.9
    assert fit_calibration(_audit(2000), 0.95).tiers["local"].threshold > tier.threshold


def test_p_correct_follows_the_audit_not_the_models_claim() -> None:
    calibration = fit_calibration(_audit(3000), 0.9)
    p = calibration.p_correct(pd.Series(["local"] * 3), pd.Series([0.3, 0.7, 0.95]))
    assert np.all(np.diff(p) > 0)  # monotone
    assert abs(p[1] - 0.49) < 0.08  # right 0.7**2 of the time, not 0.7


def test_no_audit_accepts_nothing_and_knows_nothing() -> None:
    calibration = fit_calibration(_audit(0), 0.95)
    tiers, conf = pd.Series(["local", "llm:x"]), pd.Series([0.999, 0.999])
    assert not calibration.accepted(tiers, conf, pd.Series(["roads", "roads"])).any()
    assert np.isnan(calibration.p_correct(tiers, conf)).all()


def test_a_domain_below_the_target_gets_a_stricter_threshold_of_its_own() -> None:
    audit = _audit(4000, domain_of=lambda i: "roads" if i % 2 else "waste")
    weak = audit["predicted"] == "waste"
    # Half of the waste labels above any confidence are wrong.
    audit.loc[weak & (audit.index % 4 == 0), "truth"] = "other"
    tier = fit_calibration(audit, 0.7).tiers["local"]
    assert tier.threshold_for("waste") > tier.threshold
    assert tier.threshold_for("roads") < tier.threshold  # the pooled one carries waste's errors


def test_a_few_audit_errors_do_not_make_a_domains_threshold_stricter() -> None:
    # 100 audited "waste" labels, all surer than the pooled threshold, two of them wrong: not
    # proven below the target there, so waste keeps the pooled threshold.
    audit = _audit(3000)
    waste = pd.DataFrame(
        {
            "row_id": [f"w{i}" for i in range(100)],
            "tier": "local",
            "confidence": np.linspace(0.99, 0.95, 100),
            "predicted": "waste",
            "truth": ["other"] * 2 + ["waste"] * 98,
        }
    )
    tier = fit_calibration(pd.concat([audit, waste]), 0.8).tiers["local"]
    assert tier.threshold is not None and tier.threshold < 0.95
    assert tier.threshold_for("waste") == tier.threshold


def test_a_thinly_audited_domain_shares_the_pooled_threshold() -> None:
    # 40 audited labels per thin domain: every one right in "parks", half wrong in "lifts".
    # Neither is enough to fit a domain threshold at 95%, so both use the pooled one.
    audit = _audit(3000)
    thin = pd.DataFrame(
        {
            "row_id": [f"t{i}" for i in range(80)],
            "tier": "local",
            "confidence": np.linspace(0.9, 0.99, 80),
            "predicted": ["parks"] * 40 + ["lifts"] * 40,
            "truth": ["parks"] * 40 + ["lifts", "other"] * 20,
        }
    )
    tier = fit_calibration(pd.concat([audit, thin]), 0.8).tiers["local"]
    assert tier.threshold is not None
    assert tier.threshold_for("parks") == tier.threshold_for("lifts") == tier.threshold
    assert tier.threshold_for("roads") != tier.threshold  # 3,000 audited: a threshold of its own


def test_wilson_interval_contains_the_proportion_and_narrows_with_data() -> None:
    low, high = wilson_interval(90, 100)
    assert low < 0.9 < high
    assert (high - low) > (np.subtract(*wilson_interval(900, 1000)[::-1]))
    assert wilson_interval(0, 0) == (0.0, 1.0)


def _judged_domains(domains: list[str], waste_right: int) -> pd.DataFrame:
    """150 audited labels per domain, 98% right, and 100 sure "waste" labels."""
    rng = np.random.default_rng(3)
    n = 150 * len(domains)
    predicted = np.repeat(domains, 150)
    right = rng.random(n) < 0.98
    return pd.DataFrame(
        {
            "row_id": [f"r{i}" for i in range(n + 100)],
            "tier": "local",
            "confidence": np.concatenate([rng.uniform(0.9, 1.0, n), np.full(100, 0.99)]),
            "predicted": [*predicted, *["waste"] * 100],
            "truth": [
                *np.where(right, predicted, "other"),
                *["waste"] * waste_right,
                *["other"] * (100 - waste_right),
            ],
        }
    )


def test_a_domain_looking_short_among_many_judged_domains_keeps_the_pooled_threshold() -> None:
    # 92 of 100 "waste" labels right: below 95% with 75% assurance alone, but among seven
    # judged domains one such look is the audit's noise as often as not.
    many = fit_calibration(_judged_domains([f"d{i}" for i in range(6)], 92), 0.95)
    assert many.tiers["local"].threshold_for("waste") == many.tiers["local"].threshold
    few = fit_calibration(_judged_domains(["roads"], 92), 0.95).tiers["local"]
    assert few.threshold_for("waste") > few.threshold  # two domains judged: it is held apart
    clearly_short = fit_calibration(_judged_domains([f"d{i}" for i in range(6)], 80), 0.95)
    local = clearly_short.tiers["local"]
    assert local.threshold_for("waste") > local.threshold


def _population(n: int, rng: np.random.Generator):
    """Labels right with probability quality**0.15, and two noisy views of that quality: the
    label's own confidence (it orders the audit and decides acceptance), and the out-of-fold
    confidence the audit's decisions are scored with."""
    quality = rng.random(n)
    right = rng.random(n) < quality**0.15

    def view() -> np.ndarray:
        return 1 / (1 + np.exp(-(8 * quality - 4 + rng.normal(0, 1.5, n))))

    return right, view(), view()


def _decided(rows: np.ndarray, right: np.ndarray, confidence: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row_id": [f"r{i}" for i in rows],
            "tier": "local",
            "confidence": confidence[rows],
            "predicted": "roads",
            "truth": np.where(right[rows], "roads", "other"),
        }
    )


def test_an_audit_worked_from_the_top_answers_for_its_undecided_labels() -> None:
    rng = np.random.default_rng(0)
    right, own, out_of_fold = _population(60_000, rng)
    audit = rng.choice(len(right), 900, replace=False)
    top = audit[np.argsort(-own[audit])][:250]
    decided = _decided(top, right, out_of_fold)
    undecided = pd.DataFrame(
        {"tier": "local", "confidence": own[np.setdiff1d(audit, top)], "predicted": "roads"}
    )

    def precision(calibration) -> tuple[float, float]:
        accepted = own >= calibration.tiers["local"].threshold
        return right[accepted].mean(), calibration.tiers["local"].accepted_precision

    # The top alone flatters a low threshold: its labels are right where the model's own
    # confidence is high, whatever the out-of-fold one says.
    truth, claimed = precision(fit_calibration(decided, 0.95))
    assert truth < 0.93 < 0.95 < claimed
    honest = fit_calibration(
        decided, 0.95, undecided=undecided, complete=np.zeros(len(decided), dtype=bool)
    )
    truth, claimed = precision(honest)
    assert truth >= 0.95 and abs(truth - claimed) < 0.02
    assert honest.tiers["local"].audited == 250  # the undecided are no decisions


def test_a_complete_uniform_part_of_the_audit_needs_no_guess_for_the_rest() -> None:
    rng = np.random.default_rng(1)
    right, own, out_of_fold = _population(60_000, rng)
    audit = rng.choice(len(right), 900, replace=False)
    decided = _decided(audit[:500], right, out_of_fold)
    undecided = pd.DataFrame(
        {"tier": "local", "confidence": own[audit[500:]], "predicted": "roads"}
    )
    complete = np.arange(500) < 450  # the rest were decided out of order
    fitted = fit_calibration(decided, 0.95, undecided=undecided, complete=complete)
    on_the_part = fit_calibration(decided[complete], 0.95)
    assert fitted.tiers["local"].threshold == on_the_part.tiers["local"].threshold is not None
    assert fitted.tiers["local"].audited == 500
    without = fit_calibration(
        decided, 0.95, undecided=undecided, complete=np.zeros(500, dtype=bool)
    )
    assert without.tiers["local"].threshold is None  # 400 guessed wrong accept nothing
