"""Console pages for customer value (客户价值): the RFM grid and value pyramid, CLV and churn charts,
people by segment, clusters in words, repurchase reminders, basket rules, KOCs and fission trees,
lookalike audiences, the weights, and a value card on the profile 360 page.

Every page reads the last successful run from SQL (siyu.value.queries); "recompute now" queues a run
for the server's value worker and never blocks the request. Reading needs `analytics:read`; running,
settings and lookalikes need `segments:write` (their results become tags and segments); handing out a
share link needs `links:write`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from siyu.errors import Conflict, InvalidInput, NotFound
from siyu.errors_i18n import error_text
from siyu.i18n import register
from siyu.segments import service as segments
from siyu.value import audiences, config, queries, rfm, service, share
from siyu.value.repurchase import STATUSES
from siyu.value.tags import CHURN_RISK, PREDICTED_VALUE, PURCHASE_INTENT
from siyu.web.context import Viewer, page, render, runtime_of

register(
    {
        "nav.value": ("客户价值", "Value"),
        "value.title": ("客户价值", "Customer value"),
        "value.nav.overview": ("概览", "Overview"),
        "value.nav.people": ("客户", "People"),
        "value.nav.clusters": ("客户分群", "Clusters"),
        "value.nav.repurchase": ("复购提醒", "Repurchase"),
        "value.nav.basket": ("购物篮", "Basket"),
        "value.nav.social": ("社交价值 · KOC", "Social value · KOC"),
        "value.nav.lookalike": ("相似人群", "Lookalike"),
        "value.nav.settings": ("设置", "Settings"),
        "value.intro": (
            "RFM 分层、客户生命周期价值（CLV）、流失风险、复购周期、"
            "购物篮与社交裂变：结果会写成模型标签，可直接用于人群圈选。",
            "RFM, customer lifetime value (CLV), churn risk, repurchase cycles, baskets and referrals; the results "
            "become model tags you can build segments on.",
        ),
        "value.no_run": (
            "还没有计算结果：点击“立即计算”，或等待每 6 小时一次的自动计算",
            "No results yet: click “Recompute now”, or wait for the automatic run (every 6 hours)",
        ),
        "value.computed": ("结果计算于 {at}（截至当地时间 {as_of}）", "Computed {at} (as of {as_of} local time)"),
        "value.run": ("立即计算", "Recompute now"),
        "value.queued": ("已加入计算队列，稍后刷新页面查看", "Queued: refresh the page in a moment"),
        "value.pending": ("正在计算…", "A run is in progress…"),
        "value.failed": ("最近一次计算失败：{error}", "The latest run failed: {error}"),
        "value.skipped": ("未计算：{reason}", "Not computed: {reason}"),
        "value.people_n": ("{n} 位客户", "{n} people"),
        "value.orders_n": ("{n} 笔订单", "{n} orders"),
        # overview
        "value.rfm": ("RFM 八类客户", "RFM segments"),
        "value.rfm_help": (
            "窗口 {days} 天内有订单的客户，按最近一次消费（R）、消费频率（F）、"
            "消费金额（M）高于或低于平均分为八类。点击格子查看客户。",
            "Customers who ordered in the last {days} days, split by recency (R), frequency (F) and monetary value "
            "(M) above or below the mean. Click a cell to see the people.",
        ),
        "value.rfm.important": ("重要（M 高）", "Important (M high)"),
        "value.rfm.general": ("一般（M 低）", "General (M low)"),
        "value.cell.people": ("{n} 人 · {share}", "{n} people · {share}"),
        "value.cell.revenue": ("贡献 {share} 消费额", "{share} of revenue"),
        "value.cell.avg": ("平均 R {r} 天 · F {f} 次 · M ¥{m}", "avg R {r} d · F {f} · M ¥{m}"),
        "value.pyramid": ("价值金字塔", "Value pyramid"),
        "value.pyramid_help.revenue_share": (
            "按消费额排序：贡献前 20% 消费额的为 VIP，其后 30% 高价值，再 30% 中价值，最后 20% 低价值",
            "Ranked by spend: the people bringing the first 20 % of revenue are VIP, the next 30 % high, "
            "the next 30 % medium, the last 20 % low",
        ),
        "value.pyramid_help.customer_share": (
            "按人数比例：前 5% VIP，其后 15% 高价值，30% 中价值，50% 低价值",
            "By share of people: top 5 % VIP, next 15 % high, 30 % medium, 50 % low",
        ),
        "value.pyramid_help.score": (
            "按 RFM 总分（3–15）：13 分以上 VIP，10 分以上高价值，7 分以上中价值",
            "By RFM score (3–15): 13+ VIP, 10+ high, 7+ medium",
        ),
        "value.col.tier": ("层级", "Tier"),
        "value.col.people": ("人数", "People"),
        "value.col.value_share": ("消费占比", "Revenue share"),
        "value.clv": ("生命周期价值与流失风险", "Lifetime value and churn risk"),
        "value.clv_help": (
            "BG/NBD + Gamma-Gamma 模型：预测未来 12 个月的价值（CLV）、"
            "仍是活跃客户的概率 P(alive) 与未来 30/90 天预计购买次数。",
            "BG/NBD + Gamma-Gamma: predicted value over the next 12 months (CLV), the probability of still being "
            "a customer P(alive), and expected purchases in the next 30/90 days.",
        ),
        "value.total_clv": ("预测 12 个月总价值", "Predicted 12-month value"),
        "value.mean_p_alive": ("平均 P(alive)", "Mean P(alive)"),
        "value.expected_30": ("未来 30 天预计订单", "Expected orders, next 30 days"),
        "value.expected_90": ("未来 90 天预计订单", "Expected orders, next 90 days"),
        "value.clv_dist": ("CLV 分布", "CLV distribution"),
        "value.p_alive_dist": ("P(alive) 分布", "P(alive) distribution"),
        "value.churn": ("流失风险", "Churn risk"),
        "value.more": ("更多", "More"),
        # people
        "value.people": ("客户价值列表", "People by value"),
        "value.filter.segment": ("RFM 分类", "RFM segment"),
        "value.filter.tier": ("价值层级", "Tier"),
        "value.filter.churn_risk": ("流失风险", "Churn risk"),
        "value.filter.repurchase": ("复购状态", "Repurchase"),
        "value.filter.cluster": ("分群", "Cluster"),
        "value.filter.koc": ("仅 KOC", "KOCs only"),
        "value.filter.sort": ("排序", "Sort"),
        "value.filter.any": ("全部", "Any"),
        "value.filter.apply": ("筛选", "Filter"),
        "value.sort.value_score": ("综合价值分", "Value score"),
        "value.sort.clv": ("预测 CLV", "Predicted CLV"),
        "value.sort.revenue": ("累计消费", "Revenue"),
        "value.sort.monetary": ("窗口内消费", "Spend in window"),
        "value.sort.recency": ("最近消费", "Most recent"),
        "value.sort.p_alive": ("流失风险最高", "Most at risk"),
        "value.sort.referrals": ("带来人数", "Referrals"),
        "value.col.person": ("客户", "Person"),
        "value.col.segment": ("RFM 分类", "RFM segment"),
        "value.col.rfm": ("R/F/M", "R/F/M"),
        "value.col.revenue": ("累计消费", "Revenue"),
        "value.col.clv": ("预测 CLV", "Predicted CLV"),
        "value.col.p_alive": ("P(alive)", "P(alive)"),
        "value.col.churn": ("流失风险", "Churn risk"),
        "value.col.score": ("综合价值分", "Value score"),
        "value.col.referrals": ("带来 / 裂变", "Brought / tree"),
        "value.empty": ("没有符合条件的客户", "Nobody matches"),
        "value.prev": ("上一页", "Previous"),
        "value.next": ("下一页", "Next"),
        # clusters
        "value.clusters": ("客户分群", "Customer clusters"),
        "value.clusters_help": (
            "k-means 按消费与活跃特征自动分群（k 由轮廓系数选出），每群用文字描述其最突出的特征。",
            "k-means on spending and activity features (k chosen by silhouette); each cluster is described by its "
            "most distinctive features.",
        ),
        "value.cluster.share": ("{n} 人 · 占 {share}", "{n} people · {share}"),
        "value.cluster.means": ("平均值", "Averages"),
        "value.cluster.people": ("查看客户", "See people"),
        "value.feature.recency_days": ("距上次购买（天）", "Days since last order"),
        "value.feature.frequency": ("订单数", "Orders"),
        "value.feature.monetary": ("累计消费", "Revenue"),
        "value.feature.average_order_value": ("客单价", "Order value"),
        "value.feature.tenure_days": ("成为客户（天）", "Customer for (days)"),
        "value.feature.categories": ("购买品类数", "Categories"),
        "value.feature.active_days": ("活跃天数", "Active days"),
        "value.feature.clv": ("预测 CLV", "Predicted CLV"),
        "value.feature.p_alive": ("P(alive)", "P(alive)"),
        "value.feature.referrals": ("带来人数", "Referrals"),
        # repurchase
        "value.repurchase": ("复购提醒", "Repurchase reminders"),
        "value.repurchase_help": (
            "按每人每个品类的复购间隔（购买不足 3 次时用品类典型间隔）预计下次购买日期；"
            "±7 天内为待复购，超过为已逾期。",
            "Each person's interval per category (the category's typical interval below 3 purchases) gives the "
            "next expected date; within ±7 days is due, later is overdue.",
        ),
        "value.categories": ("品类复购周期", "Category cycles"),
        "value.col.category": ("品类", "Category"),
        "value.col.interval": ("典型间隔（天）", "Typical interval (days)"),
        "value.col.based_on": ("依据人数", "Based on"),
        "value.col.last": ("上次购买", "Last purchase"),
        "value.col.next": ("预计复购", "Expected"),
        "value.col.every": ("间隔（天）", "Interval (days)"),
        "value.col.source": ("依据", "Basis"),
        "value.source.person": ("个人周期", "Own interval"),
        "value.source.category": ("品类周期", "Category interval"),
        # basket
        "value.basket": ("购物篮分析", "Basket analysis"),
        "value.basket_help": (
            "关联规则 A → B：支持度 = 同时购买的订单占比，置信度 = 买 A 的订单中也买 B 的比例，"
            "提升度 > 1 表示 A 让 B 更可能被购买。",
            "Rules A → B: support = share of orders with both, confidence = share of A's orders that also have B, "
            "lift > 1 means A makes B more likely.",
        ),
        "value.rules": ("关联规则", "Association rules"),
        "value.col.rule": ("规则", "Rule"),
        "value.col.support": ("支持度", "Support"),
        "value.col.confidence": ("置信度", "Confidence"),
        "value.col.lift": ("提升度", "Lift"),
        "value.col.orders": ("订单数", "Orders"),
        "value.together": ("经常一起购买", "Bought together"),
        "value.together_pick": ("选择商品", "Pick a product"),
        "value.together_empty": ("还没有与它一起购买的规律", "No pattern with this product yet"),
        "value.col.product": ("商品", "Product"),
        "value.recommend": ("为他推荐", "Recommended"),
        # social
        "value.social": ("社交价值与 KOC", "Social value and KOCs"),
        "value.social_help": (
            "每位客户可以领取专属分享链接；通过链接首次到访、之后完成身份识别的新客计为推荐关系。"
            "推荐关系构成裂变树，PageRank 衡量影响力，"
            "并与商业价值按权重（{c} : {s}）合成综合价值分，得分最高的带新客户为 KOC。",
            "Every customer can get a personal share link; a new person whose first visit came through it and who "
            "later identifies is a referral. Referrals make fission trees, PageRank measures influence, and it is "
            "combined with commercial value by the weights ({c} : {s}) into the value score; the best who brought "
            "people in are the KOCs.",
        ),
        "value.kocs": ("KOC 关键意见消费者", "KOCs"),
        "value.referrals_n": (
            "{n} 个推荐关系 · {r} 位推荐人 · 最深 {d} 层",
            "{n} referrals · {r} referrers · {d} levels deep",
        ),
        "value.trees": ("最大的裂变树", "Largest fission trees"),
        "value.tree": ("裂变树", "Fission tree"),
        "value.tree.size": ("{n} 人 · {d} 层", "{n} people · {d} levels"),
        "value.tree.show": ("查看", "Show"),
        "value.weights": ("权重设置", "Weights"),
        "value.col.social": ("社交分", "Social"),
        "value.col.commercial": ("商业分", "Commercial"),
        # lookalike
        "value.lookalike": ("相似人群扩展", "Lookalike audiences"),
        "value.lookalike_help": (
            "选择一个种子人群，模型学习他们的消费与活跃特征，为其余客户打分，"
            "把最相似的人保存为新的人群。AUC 为留出验证结果（偏保守）。",
            "Pick a seed segment: the model learns its spending and activity features, scores everyone else, and "
            "saves the most similar as a new segment. The AUC is held out (a conservative floor).",
        ),
        "value.lookalike.seed": ("种子人群", "Seed segment"),
        "value.lookalike.top": ("取最相似的 N 人", "Top N people"),
        "value.lookalike.threshold": ("或相似度不低于（0–1）", "Or score at least (0–1)"),
        "value.lookalike.name": ("新人群名称（可选）", "New segment name (optional)"),
        "value.lookalike.model": ("模型", "Model"),
        "value.lookalike.model.logistic": ("逻辑回归（可解释）", "Logistic regression (explainable)"),
        "value.lookalike.model.gbdt": ("梯度提升树", "Gradient boosting"),
        "value.lookalike.build": ("生成相似人群", "Build the audience"),
        "value.lookalike.no_segments": (
            "还没有人群：先在“人群”中圈选种子人群",
            "No segments yet: build a seed segment first",
        ),
        "value.lookalike.history": ("已生成的相似人群", "Lookalikes built"),
        "value.lookalike.result": (
            "已保存为人群“{name}”：{n} 人（种子 {seeds} 人），AUC {auc}",
            "Saved as segment “{name}”: {n} people ({seeds} seeds), AUC {auc}",
        ),
        "value.col.seed": ("种子人群", "Seed"),
        "value.col.audience": ("新人群", "Audience"),
        "value.col.auc": ("AUC", "AUC"),
        "value.col.drivers": ("主要特征", "Driving features"),
        "value.col.created": ("生成时间", "Created"),
        # settings
        "value.settings": ("客户价值设置", "Value settings"),
        "value.settings.saved": ("已保存", "Saved"),
        "value.settings.rescored": ("已按新权重重新评分 {n} 人", "Rescored {n} people with the new weights"),
        "value.settings.window_days": ("RFM 时间窗口（天）", "RFM window (days)"),
        "value.settings.pyramid_method": ("价值金字塔划分方式", "Pyramid method"),
        "value.settings.method.revenue_share": ("按消费额贡献（20/30/30/20）", "By revenue share (20/30/30/20)"),
        "value.settings.method.customer_share": ("按人数比例（5/15/30/50）", "By share of people (5/15/30/50)"),
        "value.settings.method.score": ("按 RFM 总分", "By RFM score"),
        "value.settings.commercial_weight": ("商业价值权重", "Commercial value weight"),
        "value.settings.social_weight": ("社交价值权重", "Social value weight"),
        "value.settings.weights_help": (
            "综合价值分 = 商业价值（预测 CLV）与社交价值（影响力）的加权和，权重会自动归一化，如 3 : 7。",
            "Value score = weighted commercial value (predicted CLV) and social value (influence); the weights are "
            "normalised, e.g. 3 : 7.",
        ),
        "value.settings.koc_top": ("KOC 人数", "Number of KOCs"),
        "value.settings.share_url": ("分享落地页", "Share landing page"),
        "value.settings.share_url_help": (
            "客户专属分享链接跳转到这里，并带上 sy_vid 访客 ID，落地页识别身份时一并上报即可建立推荐关系。",
            "Personal share links lead here with the visitor id (sy_vid); report it when the landing page "
            "identifies the visitor and the referral is recorded.",
        ),
        "value.settings.utc_offset_hours": ("时区（UTC 偏移小时）", "Time zone (UTC offset, hours)"),
        "value.settings.save": ("保存", "Save"),
        # person card
        "value.card": ("客户价值", "Customer value"),
        "value.card.none": ("还没有价值数据：此人尚无订单或推荐记录，或尚未运行计算", "No value data yet"),
        "value.card.tier": ("价值层级", "Tier"),
        "value.card.segment": ("RFM 分类", "RFM segment"),
        "value.card.clv": ("预测 12 个月价值", "Predicted 12-month value"),
        "value.card.p_alive": ("仍活跃概率", "P(alive)"),
        "value.card.next30": ("未来 30 天预计购买", "Expected purchases, 30 days"),
        "value.card.churn": ("流失风险", "Churn risk"),
        "value.card.cluster": ("所属分群", "Cluster"),
        "value.card.score": ("综合价值分", "Value score"),
        "value.card.referrer": ("推荐人", "Referred by"),
        "value.card.referred": ("带来新客", "Brought in"),
        "value.card.repurchase": ("复购周期", "Repurchase cycles"),
        "value.card.share": ("专属分享链接", "Personal share link"),
        "value.card.share_get": ("生成分享链接", "Get a share link"),
        "value.card.copy": ("复制", "Copy"),
        "value.card.open": ("查看完整价值", "Full value page"),
        "value.person": ("客户价值 · {name}", "Customer value · {name}"),
    }
)

TIER_LABELS = {t.code: t for t in rfm.TIERS}
SEGMENT_LABELS = {s.code: s for s in rfm.SEGMENTS}
LABELS: dict[str, dict[str, Any]] = {
    "segment": SEGMENT_LABELS,
    "tier": TIER_LABELS,
    "churn_risk": {v.code: v for v in CHURN_RISK.values},
    "predicted_value": {v.code: v for v in PREDICTED_VALUE.values},
    "purchase_intent": {v.code: v for v in PURCHASE_INTENT.values},
    "repurchase": {s.code: s for s in STATUSES},
}
PAGE = 50
# the grid's layout: rows M high / M low, columns by R and F
GRID_COLUMNS = ((True, True), (True, False), (False, True), (False, False))


def label(kind: str, code: Any, locale: str) -> str:
    item = LABELS.get(kind, {}).get(code)
    if item is None:
        return "—" if code is None else str(code)
    return item.zh if locale == "zh-CN" else item.en


def _helpers(viewer: Viewer) -> dict[str, Any]:
    locale = viewer.locale

    def lab(kind: str, code: Any) -> str:
        return label(kind, code, locale)

    def pct(value: Any) -> str:
        return "—" if value is None else f"{100 * float(value):.1f}%"

    def money(value: Any) -> str:
        return "—" if value is None else f"¥{float(value):,.0f}"

    def num(value: Any, digits: int = 1) -> str:
        return "—" if value is None else f"{float(value):,.{digits}f}"

    return {"lab": lab, "pct": pct, "money": money, "num": num, "labels": LABELS}


async def _load(request: Request, fn, *args) -> Any:
    def run() -> Any:
        with runtime_of(request).db.session() as session:
            return fn(session, *args)

    return await anyio.to_thread.run_sync(run)


async def _page(request: Request, viewer: Viewer, template: str, status: int = 200, **context: Any) -> Response:
    state = await _load(request, queries.status, viewer.workspace.id)
    return render(
        request,
        template,
        viewer,
        status,
        run_status=state,
        queued=bool(request.query_params.get("queued")),
        **_helpers(viewer),
        **context,
    )


def _int(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isascii() and raw.isdigit() and len(raw) < 10 else None


def _errors(exc: InvalidInput | Conflict, locale: str) -> list[dict[str, str]]:
    errors = exc.errors if isinstance(exc, InvalidInput) else [exc.field_error()]
    return [{"field": e.field, "message": error_text(e, locale)} for e in errors]


# --- overview ----------------------------------------------------------------------------------------------


@page("analytics:read")
async def overview_page(request: Request, viewer: Viewer) -> Response:
    data = await _load(request, queries.overview, viewer.workspace.id)
    grid = {c["segment"]: c for c in (data["rfm"] or {}).get("grid", [])}
    rows = []
    for m_high, key in ((True, "value.rfm.important"), (False, "value.rfm.general")):
        cells = []
        for r_high, f_high in GRID_COLUMNS:
            seg = next(s for s in rfm.SEGMENTS if (s.r_high, s.f_high, s.m_high) == (r_high, f_high, m_high))
            cells.append(grid.get(seg.code) or {"segment": seg.code, "customers": 0})
        rows.append((key, cells))
    charts = {}
    if data["clv"]:
        zh = viewer.locale == "zh-CN"
        charts = {
            "clv": [[f"{b['low']:.0f}–{b['high']:.0f}", b["count"]] for b in data["clv"]["clv_histogram"]],
            "p_alive": [[f"{b['low']:.1f}–{b['high']:.1f}", b["count"]] for b in data["clv"]["p_alive_histogram"]],
            "churn": [[r["name_zh"] if zh else r["name_en"], r["count"]] for r in data["clv"]["churn_risk"]],
        }
    if data["pyramid"]:
        charts["pyramid"] = [
            [label("tier", t["tier"], viewer.locale), t["customers"], round(100 * t["value_share"], 1)]
            for t in data["pyramid"]["tiers"]
        ]
    charts["labels"] = {"people": viewer.t("value.col.people"), "share": viewer.t("value.col.value_share")}
    return await _page(request, viewer, "value.html", data=data, grid_rows=rows, charts=charts)


@page("segments:write")
async def run_now(request: Request, viewer: Viewer) -> Response:
    rt = runtime_of(request)
    await anyio.to_thread.run_sync(rt.value.request, viewer.workspace.id, viewer.user.email)
    return RedirectResponse("/console/value?queued=1", status_code=303)


# --- people ---------------------------------------------------------------------------------------------------


@page("analytics:read")
async def people_page(request: Request, viewer: Viewer) -> Response:
    q = request.query_params
    filters: dict[str, Any] = {k: q.get(k) or None for k in ("segment", "tier", "churn_risk", "repurchase")}
    filters["cluster"] = _int(q.get("cluster"))
    filters["koc"] = True if q.get("koc") else None
    sort = q.get("sort") or "value_score"
    page_no = max(_int(q.get("page")) or 1, 1)
    try:
        data = await _load(request, queries.people, viewer.workspace.id, filters, sort, PAGE, (page_no - 1) * PAGE)
        error = None
    except InvalidInput as exc:
        data = {"total": 0, "items": [], "filters": {}, "sort": "value_score"}
        error = "; ".join(e["message"] for e in _errors(exc, viewer.locale))

    def url(n: int) -> str:
        params = {k: v for k, v in {**filters, "sort": sort}.items() if v not in (None, "", False)}
        return "/console/value/people?" + urlencode({**params, "page": n})

    return await _page(
        request,
        viewer,
        "value_people.html",
        422 if error else 200,
        data=data,
        filters=filters,
        sort=sort,
        sorts=list(queries.SORTS),
        error=error,
        prev_url=url(page_no - 1) if page_no > 1 else None,
        next_url=url(page_no + 1) if page_no * PAGE < data["total"] else None,
    )


def _person_card(session, workspace_id: int, super_id: int, scheme: str) -> dict[str, Any]:
    found = queries.person(session, workspace_id, super_id, scheme)
    clusters = queries.clusters(session, workspace_id)["clusters"]
    found["cluster"] = next((c for c in clusters if found["value"] and c["cluster"] == found["value"]["cluster"]), None)
    return found


async def _card_context(request: Request, viewer: Viewer) -> dict[str, Any] | None:
    super_id = request.path_params["super_id"]
    if not 1 <= super_id <= 2**62:
        return None
    try:
        return await _load(request, _person_card, viewer.workspace.id, super_id, runtime_of(request).scheme)
    except NotFound:
        return None


@page("analytics:read")
async def person_card(request: Request, viewer: Viewer) -> Response:
    """The value card alone: the profile 360 page loads it into its value section."""
    found = await _card_context(request, viewer)
    if found is None:
        return render(request, "error.html", viewer, 404, message=viewer.t("error.not_found"))
    back = request.query_params.get("next") or ""
    next_url = back if back.startswith("/console/") else None
    return render(request, "value_person_card.html", viewer, p=found, next_url=next_url, **_helpers(viewer))


@page("analytics:read")
async def person_page(request: Request, viewer: Viewer) -> Response:
    found = await _card_context(request, viewer)
    if found is None:
        return render(request, "error.html", viewer, 404, message=viewer.t("error.not_found"))
    return await _page(request, viewer, "value_person.html", p=found)


@page("links:write")
async def create_share_link(request: Request, viewer: Viewer) -> Response:
    super_id = request.path_params["super_id"]
    rt = runtime_of(request)
    form = await request.form()
    back = str(form.get("next") or f"/console/value/people/{super_id}")
    if not back.startswith("/console/"):
        back = f"/console/value/people/{super_id}"

    def run() -> None:
        with rt.db.session() as session:
            share.get_or_create(session, rt.link_context(viewer.workspace.id, viewer.user.email), super_id)

    try:
        await anyio.to_thread.run_sync(run)
    except NotFound:
        return render(request, "error.html", viewer, 404, message=viewer.t("error.not_found"))
    except InvalidInput as exc:
        message = "; ".join(e["message"] for e in _errors(exc, viewer.locale))
        return render(request, "error.html", viewer, 422, message=message)
    return RedirectResponse(back, status_code=303)


# --- clusters, repurchase, basket, social --------------------------------------------------------------------------


@page("analytics:read")
async def clusters_page(request: Request, viewer: Viewer) -> Response:
    data = await _load(request, queries.clusters, viewer.workspace.id)
    return await _page(request, viewer, "value_clusters.html", data=data)


@page("analytics:read")
async def repurchase_page(request: Request, viewer: Viewer) -> Response:
    q = request.query_params
    status = q.get("status") if q.get("status") in queries.DUE_STATUSES else "due"
    category = (q.get("category") or "")[:200] or None
    page_no = max(_int(q.get("page")) or 1, 1)
    data = await _load(
        request, queries.repurchase_due, viewer.workspace.id, status, category, PAGE, (page_no - 1) * PAGE
    )

    def url(n: int) -> str:
        return "/console/value/repurchase?" + urlencode(
            {k: v for k, v in (("status", status), ("category", category), ("page", n)) if v}
        )

    return await _page(
        request,
        viewer,
        "value_repurchase.html",
        data=data,
        prev_url=url(page_no - 1) if page_no > 1 else None,
        next_url=url(page_no + 1) if page_no * PAGE < data["total"] else None,
    )


@page("analytics:read")
async def basket_page(request: Request, viewer: Viewer) -> Response:
    product = (request.query_params.get("product") or "")[:200]
    data = await _load(request, queries.rules, viewer.workspace.id, None, 100, 0)
    products = await _load(request, queries.products, viewer.workspace.id, 200, 0)
    together = None
    if product:
        try:
            together = await _load(request, queries.bought_together, viewer.workspace.id, product, 10)
        except (NotFound, InvalidInput):
            together = {"product": {"product_id": product, "name": ""}, "items": [], "orders": 0}
    return await _page(
        request, viewer, "value_basket.html", data=data, products=products["items"], product=product, together=together
    )


@page("analytics:read")
async def social_page(request: Request, viewer: Viewer) -> Response:
    ws = viewer.workspace.id
    kocs = await _load(request, queries.kocs, ws, 50, 0)
    trees = await _load(request, queries.trees, ws)
    settings = await _load(request, config.load, ws)
    root = _int(request.query_params.get("root"))
    if root is None and trees["trees"]:
        root = trees["trees"][0]["root"]
    tree = None
    if root is not None:
        try:
            tree = await _load(request, queries.tree, ws, root, queries.MAX_TREE_NODES)
        except NotFound:
            tree = None
    chart = {"tree": _chart_tree(tree["root"]) if tree else None}
    return await _page(
        request,
        viewer,
        "value_social.html",
        kocs=kocs,
        trees=trees,
        tree=tree,
        root=root,
        settings=settings,
        chart=chart,
    )


def _chart_tree(node: dict[str, Any]) -> dict[str, Any]:
    """The tree as the chart wants it (names and ids only)."""
    return {"super_id": node["super_id"], "name": node["name"], "children": [_chart_tree(c) for c in node["children"]]}


# --- lookalike ---------------------------------------------------------------------------------------------------


def _lookalike_context(session, workspace_id: int) -> dict[str, Any]:
    return {
        "segments": [(s.id, s.name, s.member_count) for s in segments.list_segments(session, workspace_id)],
        "history": audiences.list_lookalikes(session, workspace_id),
    }


@page("analytics:read")
async def lookalike_page(request: Request, viewer: Viewer) -> Response:
    context = await _load(request, _lookalike_context, viewer.workspace.id)
    made = _int(request.query_params.get("made"))
    return await _page(request, viewer, "value_lookalike.html", **context, form={}, errors=[], made=made)


def _form_number(raw: Any, cast) -> Any:
    text = str(raw or "").strip()
    if not text:
        return None
    try:
        return cast(text)
    except ValueError:
        return text  # the domain check names the field and says what it must be


@page("segments:write")
async def build_lookalike(request: Request, viewer: Viewer) -> Response:
    form = await request.form()
    raw = {
        "seed_segment_id": _form_number(form.get("seed_segment_id"), int),
        "top_n": _form_number(form.get("top_n"), int),
        "threshold": _form_number(form.get("threshold"), float),
        "name": str(form.get("name") or "").strip() or None,
        "model": str(form.get("model") or "logistic"),
    }
    raw = {k: v for k, v in raw.items() if v is not None or k == "seed_segment_id"}
    rt = runtime_of(request)
    try:
        made = await anyio.to_thread.run_sync(
            lambda: audiences.create(rt.db, viewer.workspace.id, raw, viewer.user.email, refresh=rt.tags.recompute)
        )
    except (InvalidInput, Conflict) as exc:
        context = await _load(request, _lookalike_context, viewer.workspace.id)
        shown = {k: form.get(k) or "" for k in ("seed_segment_id", "top_n", "threshold", "name", "model")}
        return await _page(
            request,
            viewer,
            "value_lookalike.html",
            422,
            **context,
            form=shown,
            errors=_errors(exc, viewer.locale),
            made=None,
        )
    return RedirectResponse(f"/console/value/lookalike?made={made['id']}", status_code=303)


# --- settings ----------------------------------------------------------------------------------------------------


@page("analytics:read")
async def settings_page(request: Request, viewer: Viewer) -> Response:
    current = await _load(request, config.load, viewer.workspace.id)
    q = request.query_params
    return await _page(
        request,
        viewer,
        "value_settings.html",
        form=current.as_dict(),
        errors=[],
        saved=bool(q.get("saved")),
        rescored=_int(q.get("rescored")),
        methods=rfm.PYRAMID_METHODS,
    )


@page("segments:write")
async def save_settings(request: Request, viewer: Viewer) -> Response:
    form = await request.form()
    raw = {
        "window_days": _form_number(form.get("window_days"), int),
        "pyramid_method": str(form.get("pyramid_method") or "") or None,
        "commercial_weight": _form_number(form.get("commercial_weight"), float),
        "social_weight": _form_number(form.get("social_weight"), float),
        "koc_top": _form_number(form.get("koc_top"), int),
        "share_url": str(form.get("share_url") or ""),
        "utc_offset_hours": _form_number(form.get("utc_offset_hours"), float),
    }
    rt = runtime_of(request)

    def run() -> int | None:
        with rt.db.session() as session:
            before = config.load(session, viewer.workspace.id)
            after = config.save(session, viewer.workspace.id, raw, actor=viewer.user.email)
            if (before.weights, before.koc_top) != (after.weights, after.koc_top):
                return service.rescore(session, viewer.workspace.id)
            return None

    try:
        rescored = await anyio.to_thread.run_sync(run)
    except InvalidInput as exc:
        shown = {k: form.get(k) or "" for k in config.FIELDS}
        return await _page(
            request,
            viewer,
            "value_settings.html",
            422,
            form=shown,
            errors=_errors(exc, viewer.locale),
            saved=False,
            rescored=None,
            methods=rfm.PYRAMID_METHODS,
        )
    suffix = f"&rescored={rescored}" if rescored is not None else ""
    return RedirectResponse(f"/console/value/settings?saved=1{suffix}", status_code=303)


def routes() -> list[BaseRoute]:
    return [
        Route("/value", overview_page, methods=["GET"]),
        Route("/value/run", run_now, methods=["POST"]),
        Route("/value/people", people_page, methods=["GET"]),
        Route("/value/people/{super_id:int}", person_page, methods=["GET"]),
        Route("/value/people/{super_id:int}/card", person_card, methods=["GET"]),
        Route("/value/people/{super_id:int}/share-link", create_share_link, methods=["POST"]),
        Route("/value/clusters", clusters_page, methods=["GET"]),
        Route("/value/repurchase", repurchase_page, methods=["GET"]),
        Route("/value/basket", basket_page, methods=["GET"]),
        Route("/value/social", social_page, methods=["GET"]),
        Route("/value/lookalike", lookalike_page, methods=["GET"]),
        Route("/value/lookalike", build_lookalike, methods=["POST"]),
        Route("/value/settings", settings_page, methods=["GET"]),
        Route("/value/settings", save_settings, methods=["POST"]),
    ]
