"""Intent matching throughput: jieba segmentation + keyword matching, one core, 200 intents.

    python bench/intents.py [--intents 200] [--messages 20000] [--runs 5]

Prints messages/s (median of runs) for LeadRelay's matcher and, in the same run, two baselines on the same
messages: jieba alone (default ``lcut``) and the exact segmentation the matcher uses (``lcut_for_search``
without HMM), with the ratios. Target: >= 20,000 messages/s.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from leads.intents import IntentMatcher, build_tokenizer  # noqa: E402

TERMS = ("价格 报价 案例 白皮书 演示 试用 部署 私有化 集成 接口 安全 合规 招聘 薪酬 绩效 考勤 社保 个税 合同 审批 报表 "
         "分析 培训 入职 离职 排班 预算 发票 报销 采购 直播 活动 展会 方案 续费 升级 权限 数据 迁移 对接").split()
FRAMES = ("你们的{}多少钱", "{}怎么收费", "有没有{}的客户案例", "想了解一下{}", "{}支持私有化吗",
          "请问{}和{}能一起用吗", "我们公司500人，{}大概什么价位", "能不能约个{}演示", "{}", "你好")


@dataclass(frozen=True)
class Intent:
    name: str
    keywords: tuple[str, ...]
    priority: int = 0


def make_intents(n: int, rng: random.Random) -> list[Intent]:
    intents = []
    for i in range(n):
        keywords = {rng.choice(TERMS) + rng.choice(TERMS) for _ in range(3)} | {rng.choice(TERMS)}
        intents.append(Intent(f"intent_{i}", tuple(sorted(keywords)), priority=rng.randrange(3)))
    return intents


def make_messages(n: int, rng: random.Random) -> list[str]:
    return [rng.choice(FRAMES).format(rng.choice(TERMS), rng.choice(TERMS)) for _ in range(n)]


def rate(fn, messages: list[str]) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    for text in messages:
        fn(text)
    return len(messages) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--intents", type=int, default=200)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the target says
    rng = random.Random(20261124)
    intents = make_intents(args.intents, rng)
    messages = make_messages(args.messages, rng)
    tokenizer = build_tokenizer(k for i in intents for k in i.keywords)
    matcher = IntentMatcher(intents, tokenizer)
    matched = sum(matcher.match(m) is not None for m in messages)
    rate(matcher.match, messages[:2000])  # warm-up
    ours = [rate(matcher.match, messages) for _ in range(args.runs)]
    jieba_alone = [rate(tokenizer.lcut, messages) for _ in range(args.runs)]
    jieba_ours = [rate(lambda t: tokenizer.lcut_for_search(t, HMM=False), messages) for _ in range(args.runs)]
    ours_m, base_m = statistics.median(ours), statistics.median(jieba_alone)
    seg_m = statistics.median(jieba_ours)
    print(f"command: python bench/intents.py --intents {args.intents} --messages {args.messages} --runs {args.runs}")
    print(f"{args.intents} intents, {args.messages} messages ({matched / len(messages):.0%} matched), "
          f"median of {args.runs} runs, one core")
    print(f"  jieba lcut alone (default, HMM on)            {base_m:>10,.0f} messages/s")
    print(f"  jieba lcut_for_search, HMM off (what we cut)  {seg_m:>10,.0f} messages/s")
    print(f"  LeadRelay matcher (segmentation + matching)   {ours_m:>10,.0f} messages/s  "
          f"({ours_m / base_m:.2f}x of jieba lcut, {ours_m / seg_m:.2f}x of its own segmentation)")
    print(f"  target >= 20,000 messages/s: {'met' if ours_m >= 20_000 else 'NOT met'}")
    return 0 if ours_m >= 20_000 else 1


if __name__ == "__main__":
    sys.exit(main())
