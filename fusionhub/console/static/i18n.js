// The one translation table for every user-visible string of the console and the field page.
// Simplified Chinese is the default; English is switchable and the choice is kept in localStorage.

const STORAGE_KEY = "fh.lang";
export const LANGS = ["zh-CN", "en"];

// key: [zh-CN, en]. Keys are grouped by the kind of thing they name.
const TABLE = {
  // app and chrome
  "app.title": ["融合指挥中心", "FusionHub Command Centre"],
  "app.field_title": ["现场处置", "Field tasks"],
  "app.brand": ["融合指挥", "FusionHub"],
  "lang.switch": ["English", "中文"],
  "lang.switch_label": ["切换语言", "Switch language"],
  "conn.live": ["实时", "Live"],
  "conn.connecting": ["连接中…", "Connecting…"],
  "conn.lost": ["连接中断，正在重连…", "Connection lost, reconnecting…"],
  "nav.main": ["主导航", "Main navigation"],
  "loading": ["加载中…", "Loading…"],
  "retry": ["重试", "Retry"],
  "close": ["关闭", "Close"],
  "cancel": ["取消", "Cancel"],
  "refresh": ["刷新", "Refresh"],
  "none": ["—", "—"],

  // login
  "login.heading": ["登录", "Log in"],
  "login.username": ["用户名", "User name"],
  "login.password": ["密码", "Password"],
  "login.submit": ["登录", "Log in"],
  "login.busy": ["正在登录…", "Logging in…"],
  "login.logout": ["退出", "Log out"],
  "login.missing": ["请输入用户名和密码。", "Enter your user name and password."],
  "login.expired": ["登录已失效，请重新登录。", "Your login has expired; please log in again."],
  "login.not_field": ["此页面供现场处置人员使用。", "This page is for field teams."],
  "login.to_console": ["前往指挥中心", "Open the command centre"],
  "login.to_field": ["前往现场页面", "Open the field page"],

  // roles
  "role.admin": ["管理员", "Administrator"],
  "role.commander": ["指挥员", "Commander"],
  "role.duty": ["值班员", "Duty officer"],
  "role.field": ["处置人员", "Field team"],

  // tabs
  "tab.wall": ["视频墙", "Video wall"],
  "tab.review": ["审核队列", "Review queue"],
  "tab.cases": ["案件看板", "Case board"],
  "tab.cameras": ["摄像机", "Cameras"],

  // video wall
  "wall.empty": ["没有可查看的摄像机。", "No cameras to show."],
  "wall.connecting": ["正在连接视频…", "Connecting video…"],
  "wall.playing": ["播放中", "Playing"],
  "wall.retrying": ["视频连接失败，{s} 秒后重试", "Video failed, retrying in {s} s"],
  "wall.waiting": ["等待画面…", "Waiting for picture…"],
  "wall.camera": ["摄像机 {name}", "Camera {name}"],

  // camera states and reasons
  "state.connecting": ["连接中", "Connecting"],
  "state.online": ["在线", "Online"],
  "state.offline": ["离线", "Offline"],
  "state.degraded": ["异常", "Degraded"],
  "state.stopped": ["已停止", "Stopped"],
  "state.unknown": ["未知", "Unknown"],
  "reason.unreachable": ["无法连接", "unreachable"],
  "reason.auth_refused": ["认证被拒", "authentication refused"],
  "reason.no_video": ["无视频", "no video"],
  "reason.unsupported_codec": ["编码不支持", "unsupported codec"],
  "reason.ended": ["视频流结束", "stream ended"],

  // cameras list (admin)
  "cameras.name": ["名称", "Name"],
  "cameras.region": ["区域", "Region"],
  "cameras.url": ["地址", "URL"],
  "cameras.status": ["状态", "Status"],
  "cameras.enabled": ["启用", "Enabled"],
  "cameras.zones": ["区域数", "Zones"],
  "cameras.credentials": ["含凭据", "Credentials"],
  "cameras.empty": ["尚无摄像机。", "No cameras yet."],
  "yes": ["是", "Yes"],
  "no": ["否", "No"],

  // flags / review queue
  "review.empty": ["没有待审核的告警。", "No flags waiting for review."],
  "review.readonly": ["只读：审核由值班员完成。", "Read-only: duty officers review flags."],
  "review.new": ["新告警：{camera} · {rule}", "New flag: {camera} · {rule}"],
  "flag.camera": ["摄像机", "Camera"],
  "flag.zone": ["区域", "Zone"],
  "flag.label": ["目标", "Object"],
  "flag.confidence": ["置信度", "Confidence"],
  "flag.time": ["时间", "Time"],
  "flag.first_seen": ["首次出现", "First seen"],
  "flag.rule": ["规则", "Rule"],
  "flag.confirm": ["确认立案", "Confirm"],
  "flag.dismiss": ["驳回", "Dismiss"],
  "flag.dismiss_reason": ["驳回原因", "Reason for dismissing"],
  "flag.dismiss_submit": ["提交驳回", "Dismiss flag"],
  "flag.reason_required": ["请填写驳回原因。", "Say why the flag is dismissed."],
  "flag.confirmed": ["已确认，案件 #{id} 已立案。", "Confirmed: case #{id} filed."],
  "flag.dismissed": ["告警已驳回。", "Flag dismissed."],
  "flag.evidence": ["证据图像", "Evidence image"],
  "flag.evidence_failed": ["证据图像加载失败", "Evidence image failed to load"],

  // rules and labels
  "rule.occupied_road": ["占道", "Road occupied"],
  "rule.overflowing_bin": ["垃圾满溢", "Overflowing bin"],
  "label.car": ["小汽车", "car"],
  "label.truck": ["货车", "truck"],
  "label.bus": ["公交车", "bus"],
  "label.motorcycle": ["摩托车", "motorcycle"],
  "label.bicycle": ["自行车", "bicycle"],
  "label.person": ["行人", "person"],

  // cases
  "cases.filter": ["按状态筛选", "Filter by status"],
  "cases.all": ["全部", "All"],
  "cases.empty": ["没有案件。", "No cases."],
  "cases.pick": ["选择一个案件查看详情。", "Pick a case to see its details."],
  "case.title": ["案件", "Case"],
  "case.id": ["编号", "No."],
  "case.status": ["状态", "Status"],
  "case.category": ["类别", "Category"],
  "case.source": ["来源", "Source"],
  "case.location": ["位置", "Location"],
  "case.region": ["区域", "Region"],
  "case.team": ["处置队伍", "Team"],
  "case.camera": ["摄像机", "Camera"],
  "case.created": ["立案时间", "Filed"],
  "case.updated": ["更新时间", "Updated"],
  "case.deadline": ["处置期限", "Deadline"],
  "case.no_deadline": ["派遣后开始计时", "Clock starts at dispatch"],
  "case.time_left": ["剩余 {t}", "{t} left"],
  "case.overdue": ["已超时 {t}", "Overdue by {t}"],
  "case.attachments": ["附件", "Attachments"],
  "case.no_attachments": ["无附件", "No attachments"],
  "case.timeline": ["处置记录", "Timeline"],
  "case.actions": ["操作", "Actions"],
  "case.no_actions": ["当前状态下您无需操作。", "Nothing for you to do at this stage."],
  "case.dispatch_team": ["派遣队伍", "Team to dispatch"],
  "case.pick_team": ["请选择队伍", "Choose a team"],
  "case.dispatch": ["一键派遣", "Dispatch"],
  "case.verify": ["核查通过并结案", "Verify & close"],
  "case.reject": ["退回重办", "Send back"],
  "case.reject_note": ["退回说明", "Why it goes back"],
  "case.note_required": ["请填写说明。", "Write a note first."],
  "case.team_required": ["请先选择队伍。", "Choose a team first."],
  "case.done_dispatch": ["案件已派遣。", "Case dispatched."],
  "case.done_verify": ["案件已结案。", "Case closed."],
  "case.done_reject": ["案件已退回重办。", "Case sent back."],
  "case.by": ["{who}", "{who}"],
  "case.tasks": ["任务", "Tasks"],
  "case.task_acked_at": ["接收于 {t}", "acknowledged {t}"],
  "case.task_done_at": ["完成于 {t}", "done {t}"],
  "att.evidence": ["证据", "evidence"],
  "att.photo": ["现场照片", "photo"],
  "source.flag": ["视频智能分析", "video analytics"],
  "source.analytics": ["视频智能分析", "video analytics"],
  "source.manual": ["人工上报", "manual report"],
  "source.video_ai": ["视频智能分析", "video AI"],

  // case statuses
  "status.filed": ["已立案", "Filed"],
  "status.dispatched": ["已派遣", "Dispatched"],
  "status.handling": ["处置中", "Handling"],
  "status.handled": ["已处置待核查", "Handled"],
  "status.closed": ["已结案", "Closed"],

  // task statuses
  "task.pending": ["待接收", "Pending"],
  "task.acknowledged": ["已接收", "Acknowledged"],
  "task.done": ["已完成", "Done"],

  // timeline actions
  "action.created": ["创建", "created"],
  "action.filed": ["立案", "filed"],
  "action.file": ["立案", "filed"],
  "action.confirmed": ["确认立案", "confirmed"],
  "action.dispatched": ["派遣", "dispatched"],
  "action.dispatch": ["派遣", "dispatched"],
  "action.acknowledged": ["接收任务", "acknowledged"],
  "action.acknowledge": ["接收任务", "acknowledged"],
  "action.reported": ["反馈处置结果", "reported handled"],
  "action.report": ["反馈处置结果", "reported handled"],
  "action.handled": ["反馈处置结果", "reported handled"],
  "action.verified": ["核查结案", "verified and closed"],
  "action.verify": ["核查结案", "verified and closed"],
  "action.closed": ["结案", "closed"],
  "action.rejected": ["退回重办", "sent back"],
  "action.reject": ["退回重办", "sent back"],
  "action.reminded": ["督办提醒", "reminder"],
  "action.overdue": ["超时督办", "overdue"],
  "action.attached": ["添加附件", "attachment added"],

  // field page
  "field.tasks": ["我的任务", "My tasks"],
  "field.team": ["队伍：{team}", "Team: {team}"],
  "field.empty": ["暂无任务。新任务会自动出现。", "No tasks. New ones appear here automatically."],
  "field.new_task": ["新任务：{title}", "New task: {title}"],
  "field.ack": ["接收任务", "Acknowledge"],
  "field.acked": ["已接收任务。", "Task acknowledged."],
  "field.report_note": ["处置情况", "What was done"],
  "field.report_note_ph": ["例如：车辆已驶离，道路已恢复通行", "e.g. vehicle moved, road clear"],
  "field.photo": ["现场照片（可选）", "Photo (optional)"],
  "field.photo_remove": ["移除照片", "Remove photo"],
  "field.photo_failed": ["照片无法读取，请换一张。", "The photo could not be read; try another."],
  "field.report": ["提交处置结果", "Report handled"],
  "field.reporting": ["正在提交…", "Sending…"],
  "field.reported": ["处置结果已提交，等待核查。", "Report sent; waiting for verification."],
  "field.waiting_verify": ["已提交，等待值班员核查。", "Reported; a duty officer will verify."],
  "field.closed": ["案件已结案。", "Case closed."],
  "field.sent_back": ["值班员退回：{note}", "Sent back by duty: {note}"],
  "field.deadline": ["期限", "Deadline"],
  "field.location": ["位置：{v}", "Location: {v}"],
  "colon": ["：", ": "],
  "field.photo_pick": ["拍照 / 选择照片", "Take or choose a photo"],
  "field.photo_change": ["换一张照片", "Choose another photo"],

  // errors (by API error code, plus client-side ones)
  "err.invalid_credentials": ["用户名或密码错误。", "Wrong user name or password."],
  "err.unauthenticated": ["请先登录。", "Please log in."],
  "err.forbidden": ["您的角色无权执行此操作。", "Your role may not do this."],
  "err.not_found": ["记录不存在或不在您的辖区。", "No such record in your region."],
  "err.transition_refused": ["当前状态不允许此操作。", "The case's current status does not allow this."],
  "err.already_reviewed": ["该告警已被他人审核。", "Someone has already reviewed this flag."],
  "err.invalid_input": ["输入有误。", "Some input is not valid."],
  "err.invalid_json": ["请求格式错误。", "The request was malformed."],
  "err.too_large": ["文件过大。", "The file is too large."],
  "err.codec_unsupported": ["浏览器不支持 H.264 视频。", "This browser cannot play H.264 video."],
  "err.no_frame": ["暂无画面。", "No picture yet."],
  "err.network": ["无法连接到指挥中心服务器。", "Cannot reach the hub."],
  "err.server": ["服务器出错（{status}）。", "The hub answered with an error ({status})."],
  "err.unknown": ["操作失败。", "Something went wrong."],

  // time units for durations
  "dur.d": ["{n}天", "{n} d"],
  "dur.h": ["{n}小时", "{n} h"],
  "dur.m": ["{n}分", "{n} min"],
  "dur.s": ["{n}秒", "{n} s"],
};

let lang = initialLang();
const listeners = new Set();

function initialLang() {
  try {
    const stored = localStorage.getItem(STORAGE_KEY);
    if (LANGS.includes(stored)) return stored;
  } catch {
    // storage may be disabled; fall back to the default
  }
  return "zh-CN";
}

/** The current language code ("zh-CN" or "en"). */
export function getLang() {
  return lang;
}

/** Whether the user chose a language on this browser (otherwise the hub's default applies). */
export function hasStoredLang() {
  try {
    return LANGS.includes(localStorage.getItem(STORAGE_KEY));
  } catch {
    return false;
  }
}

/** Switch language; `remember` keeps the choice in localStorage. Listeners re-render. */
export function setLang(next, remember = true) {
  if (!LANGS.includes(next)) return;
  if (remember) {
    try {
      localStorage.setItem(STORAGE_KEY, next);
    } catch {
      // not kept, still switched for this page
    }
  }
  if (next === lang) return;
  lang = next;
  document.documentElement.lang = lang;
  for (const fn of listeners) fn(lang);
}

/** Call `fn(lang)` after every language change; returns an unsubscribe function. */
export function onLangChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Whether the table has a string for `key`. */
export function has(key) {
  return Object.prototype.hasOwnProperty.call(TABLE, key);
}

/** The string for `key` in the current language with `{name}` placeholders filled in. */
export function t(key, params = {}) {
  const row = TABLE[key];
  let text = row ? row[lang === "en" ? 1 : 0] : key;
  for (const [name, value] of Object.entries(params)) {
    text = text.split(`{${name}}`).join(String(value));
  }
  return text;
}

/** A translated code from a family (`status`, `rule`, …), falling back to the raw code. */
export function tr(family, code) {
  if (code === null || code === undefined || code === "") return t("none");
  const key = `${family}.${code}`;
  return has(key) ? t(key) : String(code).replace(/_/g, " ");
}

let hubTimeZone = "Asia/Shanghai";

/** The hub's time zone (from GET /api/v1/me), used for every time shown. */
export function setTimeZone(zone) {
  if (zone) hubTimeZone = zone;
}

/** Epoch seconds as a date and time in the hub's time zone. */
export function formatTime(epochSeconds, withDate = true) {
  if (epochSeconds === null || epochSeconds === undefined) return t("none");
  const options = { timeZone: hubTimeZone, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false };
  if (withDate) Object.assign(options, { year: "numeric", month: "2-digit", day: "2-digit" });
  try {
    return new Intl.DateTimeFormat(lang, options).format(new Date(epochSeconds * 1000));
  } catch {
    return new Date(epochSeconds * 1000).toISOString();
  }
}

/** A duration in seconds as "2小时5分" / "2 h 5 min" (the two largest units). */
export function formatDuration(seconds) {
  const total = Math.max(0, Math.round(Math.abs(seconds)));
  const units = [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]];
  const first = units.findIndex(([, size]) => total >= size);
  if (first < 0) return t("dur.s", { n: 0 });
  const parts = [];
  let rest = total;
  for (const [unit, size] of units.slice(first, first + 2)) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0 || parts.length === 0) parts.push(t(`dur.${unit}`, { n }));
  }
  return parts.join(lang === "en" ? " " : "");
}

/** Percentage for a 0–1 confidence. */
export function formatPercent(value) {
  if (typeof value !== "number") return t("none");
  return new Intl.NumberFormat(lang, { style: "percent", maximumFractionDigits: 0 }).format(value);
}

document.documentElement.lang = lang;
