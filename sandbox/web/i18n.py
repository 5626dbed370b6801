"""The dashboard and /docs in English or 中文: the language a request gets, and the catalog.

The English text is the key (`_("Orders")`); ZH holds its Chinese, in the words Chinese
aggregator developers use (合作方, 资方, 回调). A `?lang=` link switches and a cookie keeps
the choice; without one, Accept-Language decides. The borrower pages (contract, repayment)
stay in Indonesian. A test holds every `_("...")` of the templates to this catalog.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

LANGS = {"en": "English", "zh": "中文"}
COOKIE = "lender_sandbox_lang"
Gettext = Callable[..., str]

# The /docs page's paragraphs (`code` in backticks, rendered by the `md` filter).
ENVELOPE = (
    "Every lender endpoint is `POST` with `Content-Type: application/json;charset=utf-8` and "
    'the body `{"partner_token": "...", "encode_data": "..."}`: `encode_data` is '
    "base64(AES-128-CBC(JSON payload)) with the partner's key and IV, PKCS#7 padding, exactly "
    "like PHP `openssl_encrypt($json, 'AES-128-CBC', $key, 0, $iv)`. The answer is "
    '`{"code": 0, "message": "success", "data": {...}}`; a non-zero `code` (HTTP 200) is a '
    "business error from the catalog. Each endpoint below shows the decrypted payload with "
    "its field rules, an example, and the answer's `data`."
)
DEBUG = (
    "Debug an envelope with `POST /sandbox/tools/encrypt` and `/sandbox/tools/decrypt`, or "
    "`lender-sandbox encrypt/decrypt`."
)
FAULTS = (
    '`PUT /sandbox/faults` with one rule or `{"rules": [...]}`. Every rule also takes `path` '
    '("" = all), `partner_token` ("" = all), `order_no` ("" = any), `probability` (0-1, '
    "default 1), `seed` and `count`. Each applied fault is named in the journal entry's "
    "`fault`."
)
ERRORS = (
    "`code` 0 is success. Messages are Indonesian (what a real lender sends) followed by an "
    "English detail."
)

ZH: dict[str, str] = {
    # ---- shared ----
    "Dashboard": "仪表盘",
    "API docs": "接口文档",
    "Error": "出错",
    "Not found": "未找到",
    "Not allowed": "无权访问",
    "Logged in as the admin": "已登录：管理员",
    "Logged in as partner {0}": "已登录：合作方 {0}",
    "Log out": "退出登录",
    "Log in": "登录",
    "Token": "令牌",
    "This token is not the admin token nor a partner's control token, or the form was out of "
    "date: try again.": "该令牌既不是管理员令牌，也不是合作方的控制令牌，或表单已过期：请重试。",
    "This sandbox runs on a loopback address without an admin token: the dashboard is open, "
    "no login needed.": "本沙箱运行在本机回环地址上且未设置管理员令牌：仪表盘无需登录即可使用。",
    "The admin token shows every partner; a partner's control token (answered once, when the "
    "partner was created, or by POST /sandbox/partners/{token}/control-token) shows that "
    "partner only.": "管理员令牌可查看所有合作方；合作方的控制令牌（创建合作方时或调用 "
    "POST /sandbox/partners/{token}/control-token 时仅返回一次）只能查看该合作方。",
    "virtual": "虚拟",
    "wall clock": "实际时间",
    "Times marked VIRTUAL are on the partner's clock, which you move; WALL CLOCK is this "
    "machine's time (callback attempts, requests received).": "标为“虚拟”的时间是该合作方的虚拟"
    "时钟（由你推进）；标为“实际时间”的是本机的真实时间（回调的每次发送、收到请求的时间）。",
    "live": "实时",
    "This page refreshes itself while the clock moves or callbacks are on their way.": (
        "时钟在走或有回调待发送时，本页会自动刷新。"
    ),
    "none": "无",
    "none yet": "暂无",
    # ---- the partner page ----
    "Partners": "合作方",
    "Clock of {0}": "{0} 的虚拟时钟",
    "mode": "模式",
    "Mode": "模式",
    "rate": "倍速",
    "next event": "下一个事件",
    "real": "真实",
    "scaled": "加速",
    "manual": "手动",
    "Advance by": "推进",
    "Advance the clock by": "时钟推进",
    "Advance": "推进",
    "e.g. 30m, 2h, 8d": "例如 30m、2h、8d",
    "Set to": "设为",
    "Set": "设置",
    "forward only; no zone = WIB": "只能向前；不带时区按 WIB（UTC+7）",
    "Change": "修改",
    "Reset {0}": "重置 {0}",
    "Wipe every order, callback and request of {0}?": "清空 {0} 的所有订单、回调和请求记录？",
    "wipes its orders, callbacks and requests; the clock starts again": (
        "清空其订单、回调和请求记录，时钟重新开始"
    ),
    "Callbacks": "回调",
    "Callback URL": "回调地址",
    "callbacks wait until one is set": "设置回调地址之前，回调会一直等待",
    "Save": "保存",
    "Pause callbacks": "暂停回调",
    "Resume callbacks": "恢复回调",
    "paused": "已暂停",
    "pending": "待发送",
    "delivered": "已送达",
    "dead": "已放弃",
    "Each order's page shows its callbacks with every attempt.": (
        "每个订单的页面列出它的回调和每一次发送。"
    ),
    "Orders": "订单",
    "all": "全部",
    "status": "状态",
    "name": "姓名",
    "mobile": "手机号",
    "amount": "金额",
    "scenario": "场景",
    "updated": "更新时间",
    "due": "到期",
    "No orders yet: call 05 push-basic-info.": "暂无订单：调用 05 push-basic-info（一推）创建。",
    "Next page": "下一页",
    "First page": "第一页",
    "Fault rules": "故障注入规则",
    "kind": "类型",
    "path": "接口",
    "partner": "合作方",
    "settings": "参数",
    "applied": "已触发",
    "left": "剩余",
    "spent": "已用完",
    "every path": "所有接口",
    "every partner": "所有合作方",
    "Delete": "删除",
    "No fault rules: every request is answered normally.": "没有故障规则：所有请求正常应答。",
    "Add a fault": "添加故障",
    "count": "次数",
    "probability": "概率",
    "Add": "添加",
    "for this partner; ms: latency and timeout, status: http_error, code: business_error": (
        "仅对该合作方；ms 用于 latency 和 timeout，status 用于 http_error，code 用于 business_error"
    ),
    "Recent requests": "最近的请求",
    "received": "收到",
    "time": "时间",
    "fault": "故障",
    "request (decrypted)": "请求（已解密）",
    "No requests yet.": "暂无请求。",
    # ---- the order page ----
    "orders of {0}": "{0} 的订单",
    "Payout failed": "放款失败",
    "product": "产品",
    "applied for": "申请",
    "approved": "批准金额",
    "created": "创建",
    "clock now": "当前虚拟时间",
    "Borrower pages (in Indonesian, as a borrower sees them)": (
        "借款人页面（印尼语，借款人看到的样子）"
    ),
    "contract": "合同",
    "repayment page": "还款页面",
    "Force a transition": "强制状态流转",
    "trigger": "触发",
    "amount (approve)": "金额（approve）",
    "reason (reject, fail_payout)": "原因（reject、fail_payout）",
    "days (extend)": "天数（extend）",
    "Fire": "执行",
    "Final status: no trigger applies.": "终态：不能再流转。",
    "Pending events": "待触发的事件",
    "Timeline": "状态时间线",
    "from": "从",
    "to": "到",
    "cause": "原因",
    "new order": "新建订单",
    "attempts": "发送次数",
    "Redeliver": "重新发送",
    "Gave up after {0} attempts": "发送 {0} 次后放弃",
    "body (decrypted) and every attempt": "回调内容（已解密）和每一次发送",
    "delivered / next attempt": "送达 / 下次发送",
    "last answer": "最近一次应答",
    "order time": "订单时间",
    "sent": "发送时间",
    "answer": "应答",
    "latency": "耗时",
    "response body": "应答内容",
    "request as sent": "实际发送的请求",
    "no answer": "无应答",
    "Not sent yet.": "尚未发送。",
    "Payment codes": "还款码",
    "code": "还款码",
    "type": "类型",
    "state": "状态",
    "expires": "过期时间",
    "open": "待支付",
    "paid": "已支付",
    "void": "已作废",
    "expired": "已过期",
    "Pay": "支付",
    "none: 15 get-repay-detail issues them": "无：由 15 get-repay-detail 生成",
    "Payments and extensions": "还款与展期",
    "Approval (13)": "审批结论（13）",
    "Repayment plan (14)": "还款计划（14）",
    "not paid out": "尚未放款",
    # ---- the acceptance report ----
    "Acceptance report of {0}": "{0} 的联调验收报告",
    "every check of the integration, judged from what the partner did": (
        "联调验收的每一项检查，根据该合作方的实际调用判定"
    ),
    "passed": "通过",
    "failed": "不通过",
    "untested": "未测试",
    "incomplete": "未完成",
    "request": "请求",
    "callback attempt": "回调发送",
    "order": "订单",
    "{0} passed, {1} failed, {2} untested of {3} checks": (
        "共 {3} 项检查：{0} 项通过，{1} 项不通过，{2} 项未测试"
    ),
    "This run started at": "本轮验收开始于",
    "This run covers everything since the partner was created.": (
        "本轮验收包括该合作方创建以来的全部记录。"
    ),
    "Seen: {0} requests, {1} callbacks, {2} orders.": (
        "已记录：{0} 个请求，{1} 个回调，{2} 个订单。"
    ),
    "Only the oldest records of this run were read: start a new run.": (
        "只读取了本轮最早的一部分记录：请开始新一轮验收。"
    ),
    "Start a new acceptance run for {0}?": "为 {0} 开始新一轮联调验收？",
    "Start a new run": "开始新一轮验收",
    "orders, requests and callbacks are kept; the report looks only at what comes after": (
        "订单、请求和回调都会保留；报告只看此后的调用"
    ),
    "The same as JSON": "JSON 格式",
    "result": "结果",
    "check": "检查项",
    "what was seen": "判定依据",
    "... and {0} more": "……另有 {0} 条",
    "How to test": "测试方法",
    # ---- flash messages ----
    "Clock advanced to {0}; {1} events fired": "时钟已推进到 {0}，触发了 {1} 个事件",
    "Clock set to {0}; {1} events fired": "时钟已设为 {0}，触发了 {1} 个事件",
    "Clock mode: {0}": "时钟模式：{0}",
    "Reset: {0} orders deleted": "已重置：删除了 {0} 个订单",
    "Callback URL set to {0}": "回调地址已设为 {0}",
    "Callback URL removed": "已删除回调地址",
    "Callbacks paused": "回调已暂停",
    "Callbacks resumed": "回调已恢复",
    "{0}: done, the order is now {1}": "{0}：完成，订单现在是 {1}",
    "Paid {0} with {1}: the order is now {2}": "已用 {1} 支付 {0}，订单现在是 {2}",
    "Callback #{0} will be sent again": "回调 #{0} 将重新发送",
    "Fault rule #{0} added: {1}": "已添加故障规则 #{0}：{1}",
    "Fault rule #{0} deleted": "已删除故障规则 #{0}",
    "Unknown action {0}": "未知操作 {0}",
    "A new acceptance run started; {0} orders kept": "已开始新一轮联调验收，保留了 {0} 个订单",
    # ---- /docs ----
    "API reference": "接口文档",
    "The envelope": "请求报文（信封）",
    "More": "更多",
    "Callbacks 19-21": "回调 19-21",
    "Fault kinds": "故障类型",
    "Error codes": "错误码",
    "Parameters": "参数",
    "in": "位置",
    "description": "说明",
    "field": "字段",
    "rule": "规则",
    "Decrypted payload (what encode_data carries)": "解密后的业务参数（encode_data 的内容）",
    "Example payload": "参数示例",
    "The same, as sent (demo partner's key/IV)": "实际发送的报文（演示合作方的 key/IV）",
    "Body": "请求体",
    "Answer": "应答",
    "Answer data (when code is 0)": "应答 data（code 为 0 时）",
    "Callbacks 19-21 (the lender calls you)": "回调 19-21（资方调用你）",
    "layer": "层",
    "fields": "字段",
    "request processed": "请求是否被处理",
    "what the client sees": "调用方看到什么",
    "Every field of every kind": "各类型的全部字段",
    "message": "提示语",
    "meaning": "含义",
    "Server": "服务地址",
    "required": "必填",
    "Field descriptions are in English.": "字段说明为英文。",
    ENVELOPE: "资方的每个接口都是 `POST`，`Content-Type: application/json;charset=utf-8`，"
    '请求体为 `{"partner_token": "...", "encode_data": "..."}`：`encode_data` 是用合作方的 '
    "key 和 IV 对 JSON 业务参数做 AES-128-CBC（PKCS#7 填充）加密后的 base64，与 PHP "
    "`openssl_encrypt($json, 'AES-128-CBC', $key, 0, $iv)` 完全一致。应答为 "
    '`{"code": 0, "message": "success", "data": {...}}`；`code` 非 0（HTTP 200）是'
    "错误码表里的业务错误。下面每个接口列出解密后的参数及其规则、示例和应答的 `data`。",
    DEBUG: "调试报文：`POST /sandbox/tools/encrypt` 和 `/sandbox/tools/decrypt`，或命令行 "
    "`lender-sandbox encrypt/decrypt`。",
    FAULTS: '`PUT /sandbox/faults`，请求体为一条规则或 `{"rules": [...]}`。每条规则还可以带 '
    '`path`（"" 表示所有接口）、`partner_token`（"" 表示所有合作方）、`order_no`（"" 表示'
    "任意订单）、`probability`（0-1，默认 1）、`seed` 和 `count`。每次触发的故障都记在请求"
    "日志的 `fault` 字段里。",
    ERRORS: "`code` 0 表示成功。提示语为印尼语（真实资方返回的样子），后附英文说明。",
}

# Endpoint names as the partner spec titles them (the summaries carry the numbers).
ENDPOINT_TITLES_ZH: dict[str, str] = {
    "/get-loan-precheck": "预检接口",
    "/get-loan-amount": "获取用户可借款金额和期限",
    "/get-loan-interest": "利息试算",
    "/push-basic-info": "基础信息推送（一推）",
    "/push-supplement-info": "补充信息推送（二推）",
    "/get-bank-list": "获取银行卡列表/还款方式列表",
    "/push-bind-bank": "绑定银行卡",
    "/get-bind-bank": "获取绑定的银行卡",
    "/get-loan-contract": "获取合同 url",
    "/push-order-confirm": "确认借款",
    "/get-order-status": "获取订单状态",
    "/get-approval-result": "获取审批结论",
    "/get-repay-plan": "拉取还款计划",
    "/get-repay-detail": "获取还款详情/发起还款/发起展期",
    "/get-delay-list": "获取展期记录",
    "/get-delay-interest": "展期试算",
    "/get-delay-detail": "展期详情",
    "/callback-order-status": "推送订单状态",
    "/callback-approval-result": "推送审批结果",
    "/callback-repay-plan": "推送还款计划",
}


def gettext(lang: str) -> Gettext:
    """`_(text, *args)`: the text in `lang` (English when the catalog has none), formatted."""

    def _(text: str, *args: Any) -> str:
        out = ZH.get(text, text) if lang == "zh" else text
        return out.format(*args) if args else out

    return _


def choose(request: Request) -> str:
    """?lang=, else the cookie, else Accept-Language (zh first means 中文), else English."""
    asked = request.query_params.get("lang") or request.cookies.get(COOKIE, "")
    if asked in LANGS:
        return asked
    accept = request.headers.get("accept-language", "").lower()
    return "zh" if accept.startswith("zh") else "en"


def remember(request: Request, response: Response) -> Response:
    """Keep a language picked with ?lang= for the next pages."""
    asked = request.query_params.get("lang")
    if asked in LANGS:
        response.set_cookie(COOKIE, asked, max_age=365 * 86400, samesite="lax")
    return response
