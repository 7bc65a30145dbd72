"""What each customer's transfer outcome means, from an outbox row's status, WeCom's answer and the polls."""

from __future__ import annotations

from leads.customer_transfer import batch_outcomes, batches, latest_results, rejection_text

PAYLOAD = {"lead_ids": [1, 2, 3], "external_userid": ["wa", "wb", "wc"]}


def test_batches_hold_at_most_100() -> None:
    assert [len(b) for b in batches(list(range(250)))] == [100, 100, 50]
    assert batches([]) == []


def test_rows_not_yet_answered_say_so_and_a_failed_call_fails_its_whole_batch() -> None:
    assert {o.code for o in batch_outcomes(1, "pending", 0, PAYLOAD, None)} == {"queued"}
    assert {o.code for o in batch_outcomes(1, "sandboxed", 0, PAYLOAD, None)} == {"sandboxed"}
    failed = batch_outcomes(2, "failed", 8, PAYLOAD, {"errcode": 40058, "errmsg": "invalid parameter"})
    assert {(o.code, o.errcode, o.final, o.batch) for o in failed} == {("failed", 40058, True, 2)}
    assert failed[0].message.startswith("整批失败")


def test_each_customer_has_wecoms_answer_then_the_polled_status() -> None:
    response = {"errcode": 0, "customer": [{"external_userid": "wa", "errcode": 0},
                                           {"external_userid": "wb", "errcode": 40128},
                                           {"external_userid": "wc", "errcode": 0}],
                "takeover": {"wa": {"status": 1, "takeover_time": 1700000000}}, "moved": [1]}
    a, b, c = batch_outcomes(1, "sent", 1, PAYLOAD, response)
    assert (a.code, a.status, a.final, a.owner_moved, a.takeover_time) == ("taken_over", 1, True, True, 1700000000)
    assert (b.code, b.errcode, b.final, b.message) == ("rejected", 40128, True, rejection_text(40128))
    assert (c.code, c.status, c.final, c.owner_moved) == ("waiting", 2, False, False)


def test_already_in_progress_on_a_retried_call_means_our_first_attempt_got_through() -> None:
    response = {"customer": [{"external_userid": "wa", "errcode": 40129}]}
    payload = {"lead_ids": [1], "external_userid": ["wa"]}
    (first,) = batch_outcomes(1, "sent", 1, payload, response)
    (retried,) = batch_outcomes(1, "sent", 2, payload, response)
    assert (first.code, first.errcode) == ("rejected", 40129)
    assert retried.code == "waiting"


def test_an_unknown_code_is_still_reported() -> None:
    assert rejection_text(12345) == "企业微信拒绝转接（错误码 12345）"


def test_the_latest_takeover_of_a_customer_wins() -> None:
    results = latest_results([{"external_userid": "wa", "status": 1, "takeover_time": 100},
                              {"external_userid": "wa", "status": 2, "takeover_time": 200},
                              {"external_userid": "wb", "status": 3, "takeover_time": 0},
                              {"external_userid": 7, "status": 1}])
    assert results == {"wa": {"status": 2, "takeover_time": 200}, "wb": {"status": 3, "takeover_time": 0}}
