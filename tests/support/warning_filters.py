"""What the suite lets pass besides the third-party warnings of ``infra.logs``."""

# The Temporal SDK fails a workflow task whose activation has not yielded within 2 s (its
# deadlock detector) and interrupts the workflow's thread with an exception. A loaded
# machine can starve a test's in-process worker that long; the task is then retried, as in
# production. Where the interrupt lands in code that cannot raise (a weak reference's
# callback), Python reports it as unraisable, and pytest would fail whichever test runs.
# Only that exception passes: a workflow that really deadlocks still fails its test, whose
# check then never ends. tests/test_warning_filters.py pins the SDK's name for it.
SDK_DEADLOCK_INTERRUPT = (
    r"ignore:(?sm).*^temporalio\.worker\._workflow\._InterruptDeadlockError\b"
    ":pytest.PytestUnraisableExceptionWarning"
)
