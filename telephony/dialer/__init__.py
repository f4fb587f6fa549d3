"""The outbound dialer: campaigns, dialing lists, calling windows, do-not-call and consent checks, attempts as
database rows moved through explicit states, pacing across media workers, retries by outcome.

Modules: :mod:`~telephony.dialer.calendar` (calling windows in the callee's local time),
:mod:`~telephony.dialer.policy` (the checks before every dial), :mod:`~telephony.dialer.lists` (dialing-list
validation).
"""
