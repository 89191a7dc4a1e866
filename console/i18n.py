"""The console's interface text in Chinese and English, and which language this request uses."""
from __future__ import annotations

from typing import Any

from flask import request, session

from core.context import services

LANGUAGES = ("zh", "en")

# One entry per piece of interface text; the pages and their scripts read the same catalogue.
TEXT: dict[str, dict[str, str]] = {
    "app_name": {"zh": "会员服务热线", "en": "Member hotline"},
    "console": {"zh": "坐席工作台", "en": "Agent console"},
    "dashboard": {"zh": "主管看板", "en": "Supervisor dashboard"},
    "history": {"zh": "历史报表", "en": "History"},
    "login": {"zh": "登录", "en": "Log in"},
    "logout": {"zh": "退出登录", "en": "Log out"},
    "login_name": {"zh": "账号", "en": "Login"},
    "password": {"zh": "密码", "en": "Password"},
    "login_bad": {"zh": "账号或密码不正确。", "en": "The login or password is not correct."},
    "login_locked": {
        "zh": "失败次数过多，账号已锁定，请于 {until} 后再试。",
        "en": "Too many failed attempts: the account is locked until {until}.",
    },
    "login_missing": {"zh": "请输入账号和密码。", "en": "Enter your login and password."},
    "csrf_failed": {"zh": "页面已过期，请刷新后重试。", "en": "This page has expired; reload it and try again."},
    "forbidden": {"zh": "您没有权限打开此页面。", "en": "You are not allowed to open this page."},
    "not_found": {"zh": "页面不存在。", "en": "There is no such page."},
    "logged_out": {"zh": "您已退出登录。", "en": "You have logged out."},
    "language": {"zh": "English", "en": "中文"},
    "state": {"zh": "状态", "en": "State"},
    "state_available": {"zh": "空闲", "en": "Available"},
    "state_away": {"zh": "暂离", "en": "Away"},
    "state_offline": {"zh": "离线", "en": "Offline"},
    "state_on_call": {"zh": "通话中", "en": "On a call"},
    "state_wrap_up": {"zh": "话后整理", "en": "Wrap-up"},
    "go_available": {"zh": "就绪", "en": "Available"},
    "go_away": {"zh": "暂离", "en": "Away"},
    "go_offline": {"zh": "离线", "en": "Offline"},
    "in_state_for": {"zh": "已持续", "en": "for"},
    "no_call": {"zh": "暂无来电。", "en": "No call right now."},
    "member": {"zh": "会员", "en": "Member"},
    "guest": {"zh": "未识别的来电者", "en": "Unidentified caller"},
    "number": {"zh": "号码", "en": "Number"},
    "tier": {"zh": "会员等级", "en": "Tier"},
    "category": {"zh": "业务类别", "en": "Category"},
    "verified": {"zh": "身份验证", "en": "Verified"},
    "yes_verified": {"zh": "已验证", "en": "verified"},
    "not_verified": {"zh": "未验证", "en": "not verified"},
    "waited": {"zh": "等待时长", "en": "Waited"},
    "callback_call": {"zh": "回拨", "en": "Callback"},
    "tickets": {"zh": "回拨工单", "en": "Callback tickets"},
    "no_tickets": {"zh": "无回拨工单。", "en": "No callback tickets."},
    "last_calls": {"zh": "最近来电", "en": "Recent calls"},
    "no_last_calls": {"zh": "无以往来电。", "en": "No earlier calls."},
    "wrap_up": {"zh": "话后整理", "en": "Wrap-up"},
    "wrap_up_left": {"zh": "剩余 {s} 秒", "en": "{s} s left"},
    "disposition": {"zh": "处理结果", "en": "Disposition"},
    "notes": {"zh": "备注", "en": "Notes"},
    "save_wrapup": {"zh": "提交并结束整理", "en": "Save and finish wrap-up"},
    "wrapup_saved": {"zh": "已保存。", "en": "Saved."},
    "choose": {"zh": "请选择", "en": "Choose"},
    "today": {"zh": "今日", "en": "Today"},
    "calls_taken": {"zh": "接听量", "en": "Calls taken"},
    "mean_handle": {"zh": "平均处理时长", "en": "Mean handle time"},
    "holds": {"zh": "保持次数", "en": "Holds"},
    "hold_time": {"zh": "保持总时长", "en": "Time on hold"},
    "transfers_made": {"zh": "转接次数", "en": "Transfers"},
    "handling": {"zh": "通话处理", "en": "Call handling"},
    "calls_held": {"zh": "有保持的来电", "en": "Calls put on hold"},
    "calls_transferred": {"zh": "被转接的来电", "en": "Calls transferred"},
    "wrap_ups_expired": {"zh": "整理超时未提交", "en": "Wrap-ups expired unsaved"},
    "overall": {"zh": "合计", "en": "All tiers"},
    "waiting": {"zh": "排队中", "en": "Waiting"},
    "longest_wait": {"zh": "最长等待", "en": "Longest wait"},
    "offered": {"zh": "进线量", "en": "Offered"},
    "answered": {"zh": "接通量", "en": "Answered"},
    "abandoned": {"zh": "放弃量", "en": "Abandoned"},
    "asa": {"zh": "平均应答时间", "en": "ASA"},
    "service_level": {"zh": "服务水平", "en": "Service level"},
    "abandon_rate": {"zh": "放弃率", "en": "Abandon rate"},
    "target": {"zh": "目标", "en": "target"},
    "agents": {"zh": "坐席", "en": "Agents"},
    "agent": {"zh": "坐席", "en": "Agent"},
    "time_in_state": {"zh": "状态时长", "en": "Time in state"},
    "caller_tier": {"zh": "当前来电等级", "en": "Caller's tier"},
    "queue": {"zh": "排队来电（服务顺序）", "en": "Waiting callers (service order)"},
    "position": {"zh": "顺位", "en": "Position"},
    "nobody_waiting": {"zh": "当前无人排队。", "en": "Nobody is waiting."},
    "callbacks": {"zh": "回拨", "en": "Callbacks"},
    "staffing": {"zh": "坐席需求（今日）", "en": "Agents needed (today)"},
    "quarter": {"zh": "时段", "en": "From"},
    "forecast_calls": {"zh": "预计来电", "en": "Calls expected"},
    "agents_needed": {"zh": "所需坐席", "en": "Agents needed"},
    "staffing_note": {
        "zh": "按今日已到来电预测，用 Erlang C 估算；hotline plan 可用模拟校正。",
        "en": "Forecast from today's calls so far, by Erlang C; hotline plan checks it by simulation.",
    },
    "cb_scheduled": {"zh": "已预约", "en": "Scheduled"},
    "cb_due": {"zh": "待回拨", "en": "Due"},
    "cb_overdue": {"zh": "已逾期", "en": "Overdue"},
    "cb_completed": {"zh": "今日完成", "en": "Completed today"},
    "cb_failed": {"zh": "今日失败", "en": "Failed today"},
    "updated": {"zh": "更新于", "en": "Updated"},
    "stale": {"zh": "数据未能更新，正在重试…", "en": "Could not update; retrying…"},
    "date": {"zh": "日期", "en": "Date"},
    "show": {"zh": "查看", "en": "Show"},
    "export_csv": {"zh": "导出 CSV（每通电话一行）", "en": "Export CSV (one row per call)"},
    "interval": {"zh": "时段", "en": "Interval"},
    "per_15_min": {"zh": "每 15 分钟", "en": "per 15 minutes"},
    "no_data": {"zh": "当日无数据。", "en": "No calls that day."},
    "seconds": {"zh": "秒", "en": "s"},
    # The softphone (static/softphone.js, twiliodevice.js, ringtone.js): the call, its controls and the device.
    "softphone": {"zh": "通话", "en": "Call"},
    "phase_ringing": {"zh": "来电接入中", "en": "Call coming in"},
    "phase_connecting": {"zh": "正在接通…", "en": "Connecting…"},
    "phase_connected": {"zh": "通话中", "en": "Connected"},
    "phase_held": {"zh": "保持中", "en": "On hold"},
    "phase_consulting": {"zh": "咨询中", "en": "Consulting"},
    "phase_wrap_up": {"zh": "话后整理", "en": "Wrap-up"},
    "call_ringing": {"zh": "振铃中", "en": "ringing"},
    "call_connected": {"zh": "通话中", "en": "connected"},
    "call_held": {"zh": "保持中", "en": "on hold"},
    "call_consulting": {"zh": "咨询中", "en": "consulting"},
    "call_wrap_up": {"zh": "话后整理", "en": "wrap-up"},
    "muted": {"zh": "已静音", "en": "Muted"},
    "accept": {"zh": "接听", "en": "Accept"},
    "decline": {"zh": "拒接", "en": "Decline"},
    "hold": {"zh": "保持", "en": "Hold"},
    "resume": {"zh": "恢复通话", "en": "Resume"},
    "mute": {"zh": "静音", "en": "Mute"},
    "unmute": {"zh": "取消静音", "en": "Unmute"},
    "hang_up": {"zh": "挂断", "en": "Hang up"},
    "transfer": {"zh": "转接", "en": "Transfer"},
    "transfer_to": {"zh": "转给坐席（账号）", "en": "To agent (login)"},
    "transfer_mode": {"zh": "方式", "en": "Mode"},
    "mode_cold": {"zh": "直接转接", "en": "cold"},
    "mode_warm": {"zh": "先咨询再转接", "en": "warm (consult first)"},
    "transfer_queue": {"zh": "退回排队", "en": "Back to the queue"},
    "transfer_login_needed": {"zh": "请输入要转接的坐席账号。", "en": "Enter the login of the agent to transfer to."},
    "transfer_complete": {"zh": "完成转接", "en": "Complete transfer"},
    "transfer_cancel": {"zh": "取消转接", "en": "Cancel transfer"},
    "transferring": {"zh": "正在转接给 {to}（{mode}），等待对方接听…",
                     "en": "Transferring to {to} ({mode}): waiting for them to answer…"},
    "consulting_target": {"zh": "正在与 {to} 咨询，来电者保持中。", "en": "Consulting {to}; the caller is on hold."},
    "consulting_with": {"zh": "与 {by} 咨询中", "en": "Consulting with {by}"},
    "transfer_offer": {"zh": "{by} 转来的来电", "en": "A call transferred by {by}"},
    "transferred_by": {"zh": "由 {by} 转来", "en": "Transferred by {by}"},
    "call_agents": {"zh": "接听坐席", "en": "Agents on this call"},
    "phone_rings": {"zh": "您的电话正在振铃，请在电话上接听。", "en": "Your phone is ringing: answer it there."},
    "device_simulated": {"zh": "模拟电话（离线演示）", "en": "Simulated phone (offline)"},
    "device_loading": {"zh": "正在加载浏览器电话…", "en": "Loading the browser phone…"},
    "device_registering": {"zh": "浏览器电话注册中…", "en": "Browser phone registering…"},
    "device_registered": {"zh": "浏览器电话已就绪", "en": "Browser phone ready"},
    "device_unregistered": {"zh": "浏览器电话未注册", "en": "Browser phone not registered"},
    "device_failed": {"zh": "浏览器电话不可用：{error}", "en": "Browser phone unavailable: {error}"},
    "device_phone": {"zh": "来电将拨打您的电话 {endpoint}", "en": "Calls ring your phone {endpoint}"},
    "device_unknown": {"zh": "电话尚未设置", "en": "No phone set up yet"},
    "notify_enable": {"zh": "开启桌面通知", "en": "Turn on desktop notifications"},
    "notify_blocked": {"zh": "浏览器未允许桌面通知。", "en": "The browser does not allow desktop notifications."},
    "notify_title": {"zh": "来电：{tier}", "en": "Incoming call: {tier}"},
    "sound_blocked": {"zh": "浏览器尚未允许播放铃声：点击页面任意处即可开启。",
                      "en": "The browser has not allowed the ring tone yet: click anywhere on the page."},
    # Refusals of a call control, by the API's stable reason (else its own message is shown).
    "err_not_connected": {"zh": "通话尚未接通。", "en": "The call is not connected."},
    "err_not_joined": {"zh": "对方尚未加入通话。", "en": "Not everyone has joined the call yet."},
    "err_transfer_pending": {"zh": "已有转接在进行中。", "en": "A transfer is already under way."},
    "err_target_unavailable": {"zh": "该坐席现在无法接听。", "en": "That agent cannot take the call now."},
    "err_same_agent": {"zh": "不能转接给自己。", "en": "You cannot transfer a call to yourself."},
    "err_no_transfer": {"zh": "没有进行中的转接。", "en": "There is no transfer under way."},
    "err_not_consulting": {"zh": "对方尚未接听，还不能完成转接。", "en": "The target has not answered yet."},
    "err_no_leg": {"zh": "找不到可操作的坐席线路。", "en": "There is no agent leg to act on."},
    "err_twilio_failed": {"zh": "电话平台未能执行，请重试。", "en": "Twilio did not do it; try again."},
    # Why a state changed: the hotline's own reasons (shown beside the state) and the presence log's.
    "set_by_hotline": {"zh": "系统设置：{reason}", "en": "Set by the hotline: {reason}"},
    "reason_missed_offers": {"zh": "连续未接来电", "en": "offers missed in a row"},
    "reason_heartbeat_lost": {"zh": "工作台失去联系", "en": "the console went silent"},
    "reason_device_unregistered": {"zh": "电话设备未注册", "en": "the phone device is not registered"},
    "reason_agent": {"zh": "本人操作", "en": "by the agent"},
    "reason_supervisor": {"zh": "主管操作", "en": "by a supervisor"},
    "reason_offered": {"zh": "来电分配", "en": "call offered"},
    "reason_transfer_offered": {"zh": "转接来电", "en": "transfer offered"},
    "reason_call_ended": {"zh": "通话结束", "en": "call ended"},
    "reason_wrap_up_due": {"zh": "整理时间到", "en": "wrap-up time over"},
    "reason_offer_ended": {"zh": "来电未接通", "en": "offer ended"},
    "reason_missed_offer": {"zh": "未接来电", "en": "offer missed"},
    "reason_transfer_ended": {"zh": "转接结束", "en": "transfer ended"},
    "reason_registered": {"zh": "登记", "en": "registered"},
    "wrapup_extend": {"zh": "延长 30 秒", "en": "+30 s"},
    "wrapup_at_max": {"zh": "已达最长整理时间", "en": "longest wrap-up reached"},
    "wrapup_time_over": {"zh": "整理时间已到，仍可提交记录。", "en": "Wrap-up time is over; you can still save it."},
    "the_line": {"zh": "排队情况", "en": "The line"},
    "my_day": {"zh": "今日状态变化", "en": "My state changes today"},
    "recent_presence": {"zh": "最近状态变化", "en": "Recent state changes"},
    "time": {"zh": "时间", "en": "Time"},
    "change": {"zh": "变化", "en": "Change"},
    "reason": {"zh": "原因", "en": "Why"},
    "call_state": {"zh": "通话状态", "en": "Call"},
    "no_changes": {"zh": "暂无状态变化。", "en": "No changes yet."},
    # The store banner (console/stores.py, static/stores.js): shown on every page while a store is down.
    "store_database_down": {
        "zh": "数据库暂时无法访问：来电者会听到致歉并可登记回拨（先记在 Redis，数据库恢复后写入）；"
        "通话记录、工单和统计暂停更新。",
        "en": "The database cannot be reached: callers hear an apology and may leave a callback request "
        "(kept in Redis and saved when the database returns); call records, tickets and figures are on hold.",
    },
    "store_redis_down": {
        "zh": "实时排队系统（Redis）暂时无法访问：高级会员在备用队列中等待并已登记回拨工单，其他来电者可登记回拨；"
        "恢复后排队顺序将自动重建，请重新设置为“就绪”。",
        "en": "The live queue (Redis) cannot be reached: premium members hold in a backup queue with a callback "
        "ticket, other callers may book a callback; the queue is rebuilt when it returns: "
        "set yourself available again.",
    },
    "store_captured": {"zh": "已记录 {n} 个待写入的回拨请求。", "en": "{n} callback requests are waiting to be saved."},
}


def lang() -> str:
    """The language of this request: the person's choice, else the configured default."""
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return chosen
    return services().config["console"]["default_language"]


def t(key: str, **params: Any) -> str:
    """The interface text `key` in this request's language, with `{name}` parameters filled."""
    entry = TEXT[key]
    text = entry.get(lang()) or entry["zh"]
    return text.format(**params) if params else text


def catalogue() -> dict[str, str]:
    """Every interface text in this request's language (handed to the pages' scripts)."""
    code = lang()
    return {key: entry.get(code) or entry["zh"] for key, entry in TEXT.items()}


def label(labels: dict[str, str] | None, fallback: str = "") -> str:
    """A configured {zh, en} label in this request's language."""
    if not labels:
        return fallback
    return labels.get(lang()) or next(iter(labels.values()), fallback)


def wants_language() -> str | None:
    """A language asked for with ?lang= (used once, then remembered in the session)."""
    code = request.args.get("lang")
    return code if code in LANGUAGES else None
