"""The verdict policy: rules, validation, settings, and its trip through workflow history."""

from __future__ import annotations

import pytest
from temporalio.converter import DataConverter

from infra.settings import Settings
from infra.settings import SettingsError
from infra.settings_env import load_settings
from infra.settings_env import to_env
from pipeline.models import CheckPlan
from pipeline.policy import DEFAULT_IGNORE
from pipeline.policy import DEFAULT_REJECT
from pipeline.policy import POLICY_VERSION
from pipeline.policy import PolicyError
from pipeline.policy import VerdictPolicy
from pipeline.reasons import FINDINGS
from pipeline.reasons import PROBLEMS
from pipeline.reasons import VERDICT_REASONS


def test_defaults() -> None:
    policy = VerdictPolicy()
    assert policy.reject == DEFAULT_REJECT == ("javascript", "launch_actions", "signature_broken")
    assert policy.ignore == DEFAULT_IGNORE
    assert {policy.action(r) for r in PROBLEMS} == {"reject"}
    reviewed = [r for r in FINDINGS if policy.action(r) == "review"]
    assert reviewed == [
        "modified_after_signing",
        "repaired",
        "embedded_files",
        "xfa_forms",
        "page_errors",
        "blank_pages",
        "needs_ocr",
        "ocr_failed",
        "ocr_low_confidence",
        "sensitive_data",
    ]
    assert policy.ocr_min_confidence == 60


@pytest.mark.parametrize(
    ("found", "verdict", "reasons", "informational"),
    [
        ([], "pass", [], []),
        (["rotated_pages", "forms"], "pass", [], ["forms", "rotated_pages"]),
        (["needs_ocr", "blank_pages"], "review", ["blank_pages", "needs_ocr"], []),
        (
            ["sensitive_data", "javascript", "external_links"],
            "reject",
            ["javascript", "sensitive_data"],
            ["external_links"],
        ),
        (["encrypted"], "reject", ["encrypted"], []),
        (["blank_pages", "blank_pages"], "review", ["blank_pages"], []),
    ],
)
def test_decide(
    found: list[str], verdict: str, reasons: list[str], informational: list[str]
) -> None:
    decided = VerdictPolicy().decide(found)
    assert (decided.verdict, decided.reasons, decided.informational) == (
        verdict,
        reasons,
        informational,
    )


def test_to_json_lists_every_reason_once() -> None:
    recorded = VerdictPolicy(reject=("needs_ocr",), ignore=()).to_json()
    assert recorded["version"] == POLICY_VERSION
    listed = recorded["reject"] + recorded["review"] + recorded["ignore"]
    assert sorted(listed) == sorted(VERDICT_REASONS)
    assert "needs_ocr" in recorded["reject"]
    assert recorded["ignore"] == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reject": ("no_such_reason",)}, "unknown reasons no_such_reason"),
        ({"ignore": ("encrypted",)}, "cannot be ignored"),
        ({"reject": ("forms",), "ignore": ("forms",)}, "both rejected and ignored"),
        ({"unreadable_page_ratio": 0.0}, "unreadable_page_ratio"),
        ({"unreadable_page_ratio": 1.5}, "unreadable_page_ratio"),
    ],
)
def test_invalid_policies(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        VerdictPolicy(**kwargs)  # type: ignore[arg-type]


def test_settings_make_the_policy() -> None:
    settings = load_settings(
        env={
            "DOCPIPE_POLICY_REJECT": "javascript, needs_ocr",
            "DOCPIPE_POLICY_IGNORE": "",
            "DOCPIPE_POLICY_UNREADABLE_PAGE_RATIO": "0.5",
        }
    )
    policy = settings.policy.verdict_policy()
    assert policy == VerdictPolicy(
        reject=("javascript", "needs_ocr"), ignore=(), unreadable_page_ratio=0.5
    )
    assert load_settings(env=to_env(settings)) == settings
    assert Settings().policy.verdict_policy() == VerdictPolicy()


def test_a_bad_policy_setting_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="DOCPIPE_POLICY_"):
        load_settings(env={"DOCPIPE_POLICY_IGNORE": "encrypted"})


async def test_the_plan_carries_the_policy_through_payloads() -> None:
    plan = CheckPlan(
        chunk_pages=10,
        heartbeat_timeout_s=5,
        policy=VerdictPolicy(reject=("sensitive_data",), ignore=("forms",)),
    )
    converter = DataConverter.default
    (decoded,) = await converter.decode(await converter.encode([plan]), [CheckPlan])
    assert decoded == plan
    assert isinstance(decoded.policy.reject, tuple)


async def test_a_plan_from_before_the_policy_gets_the_defaults() -> None:
    converter = DataConverter.default
    payloads = await converter.encode([{"chunk_pages": 10, "heartbeat_timeout_s": 5.0}])
    (decoded,) = await converter.decode(payloads, [CheckPlan])
    assert decoded.policy == VerdictPolicy()
