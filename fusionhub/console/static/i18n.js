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
  "state.idle": ["待机（无人观看）", "Idle (nobody watching)"],
  "state.unknown": ["未知", "Unknown"],
  "reason.unreachable": ["无法连接", "unreachable"],
  "reason.auth_refused": ["认证被拒", "authentication refused"],
  "reason.no_video": ["无视频", "no video"],
  "reason.unsupported_codec": ["编码不支持", "unsupported codec"],
  "reason.ended": ["视频流结束", "stream ended"],
  "reason.timeout": ["响应超时", "timed out"],
  "reason.no_keyframe": ["长时间无关键帧", "no keyframe for too long"],

  // cameras list (admin)
  "cameras.name": ["名称", "Name"],
  "cameras.region": ["区域", "Region"],
  "cameras.url": ["地址", "URL"],
  "cameras.status": ["状态", "Status"],
  "cameras.enabled": ["启用", "Enabled"],
  "cameras.zones": ["区域数", "Zones"],
  "cameras.credentials": ["含凭据", "Credentials"],
  "cameras.analysed": ["分析码流", "Analysed stream"],
  "cameras.main_stream": ["主码流", "main stream"],
  "cameras.substream": ["子码流", "substream"],
  "cameras.substream_down": ["子码流中断，暂用主码流", "substream down: main stream meanwhile"],
  "cameras.empty": ["尚无摄像机。", "No cameras yet."],
  "workers.title": ["分析工作进程", "Analytics workers"],
  "workers.summary": ["模型 {model}（{imgsz} 像素，精度 {precision}）· 就绪 {ready}/{workers} · 分析中的摄像机 {cameras}，排队 {waiting} · 已分析 {analysed} 帧（其中 {gated} 帧画面未变）· 重试 {retried}，随工作进程丢失 {lost} · 告警 {flags}", "Model {model} ({imgsz} px, precision {precision}) · {ready} of {workers} ready · {cameras} cameras analysed, {waiting} waiting · {analysed} frames analysed ({gated} unchanged) · {retried} retried, {lost} lost with a dead worker · {flags} flags"],
  "workers.worker": ["工作进程", "Worker"],
  "workers.host": ["主机", "Host"],
  "workers.runtime": ["运行时", "Runtime"],
  "workers.state": ["状态", "State"],
  "workers.answered": ["已处理", "Frames done"],
  "workers.rtt": ["往返耗时", "Round trip"],
  "workers.batch": ["每次推理帧数", "Frames per model run"],
  "workers.batch_of": ["平均 {mean}（最多 {most}）", "{mean} on average (at most {most})"],
  "workers.idle": ["空闲", "idle"],
  "workers.busy": ["处理中", "busy"],
  "workers.loading": ["加载模型中或模型不符", "loading, or wrong model"],
  "workers.load.keeping_up": ["分析跟得上：最近 {seconds} 秒采样 {sampled} 帧，其中 {share}% 被更新的画面替换；采样延迟 p99 {p99} 秒。", "Keeping up over the last {seconds} s: {sampled} samples, {share}% replaced by newer ones before analysis; sample age p99 {p99} s."],
  "workers.load.behind": ["分析跟不上（最近 {seconds} 秒）：{reasons}。告警会延迟，部分采样未被分析。最慢的摄像机：{slowest}。请增加工作进程，或降低采样频率。", "Behind over the last {seconds} s: {reasons}. Flags come late and some samples go unanalysed. Slowest cameras: {slowest}. Add workers, or sample less often."],
  "workers.load.superseded": ["{share}% 的采样在被分析之前就被更新的画面替换", "{share}% of samples were replaced by newer ones before they were analysed"],
  "workers.load.late": ["采样延迟 p99 为 {p99} 秒", "sample age p99 {p99} s"],
  "workers.load.failed": ["{failed}/{sampled} 个采样在工作进程中出错（见其日志）", "{failed} of {sampled} samples failed in a worker (its log says why)"],
  "workers.load.camera": ["{name}（每秒分析 {analysed}，采样 {sampled}）", "{name} ({analysed} of {sampled} per s analysed)"],
  "workers.load.no_workers": ["没有就绪的工作进程：不会分析任何画面。", "No worker ready: nothing is being analysed."],
  "workers.load.warming_up": ["正在测量分析能否跟上……", "Measuring whether analytics keeps up…"],
  "workers.load.idle": ["最近 {seconds} 秒没有采样。", "No samples in the last {seconds} s."],
  "workers.none": ["没有已连接的工作进程：不会分析任何画面。", "No worker connected: nothing is being analysed."],
  "bin.capture": ["采集正常状态", "Capture normal state"],
  "bin.captured": ["已采集「{zone}」的正常状态画面。", "Normal state of {zone} captured."],
  "bin.reference_at": ["基准画面 {t}", "reference {t}"],
  "bin.no_reference": ["尚无基准画面", "no reference yet"],
  "yes": ["是", "Yes"],
  "no": ["否", "No"],

  // flags / review queue
  "review.empty": ["没有待审核的告警。", "No flags waiting for review."],
  "review.readonly": ["只读：审核由值班员完成。", "Read-only: duty officers review flags."],
  "review.new": ["新告警：{camera} · {rule}", "New flag: {camera} · {rule}"],
  "review.load.behind": ["自动分析跟不上（最近 {seconds} 秒）：告警会延迟，部分画面未被分析。已在管理员的摄像机页面提示。", "Automatic analysis is running behind (last {seconds} s): flags come late and some pictures go unanalysed. The administrator's cameras page says why."],
  "review.load.cameras": ["受影响最大：{cameras}。", "Most affected: {cameras}."],
  "review.load.no_workers": ["自动分析已停止：没有就绪的分析工作进程，不会有新的告警。请通知管理员。", "Automatic analysis has stopped: no analytics worker is ready, so no new flags will come. Tell the administrator."],
  "review.precision": ["审核准确率", "Precision from reviews"],
  "review.precision_rule": ["{rule} {pct}（确认 {confirmed} / 审核 {reviewed}）", "{rule} {pct} ({confirmed} confirmed of {reviewed} reviewed)"],
  "review.precision_none": ["尚无审核记录", "no reviews yet"],
  "review.precision_title": ["确认数 ÷（确认数 + 驳回数），按规则统计", "confirmed ÷ (confirmed + dismissed), per rule"],
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
  "rule.street_stall": ["占道经营", "Street stall"],
  "label.overflowing_bin": ["垃圾满溢", "overflowing bin"],
  "label.umbrella": ["遮阳伞", "umbrella"],
  "label.dining table": ["桌子", "table"],
  "label.chair": ["椅子", "chair"],
  "label.bench": ["长椅", "bench"],
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
  "att.clip": ["证据视频", "evidence clip"],
  "att.snapshot": ["通话截图", "call snapshot"],
  "att.recording": ["通话录像", "call recording"],
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
  "action.still_present": ["仍在现场", "still present"],
  "timeline.still_present_at": ["{t} 时仍在现场（视频分析）", "still present at {t} (video analytics)"],
  "timeline.call_recording": ["{name} · {s} 秒 · SHA-256 {sha}…", "{name} · {s} s · SHA-256 {sha}…"],

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

  // one-click tasking (console panel and field page)
  "tab.tasking": ["一键调度", "Tasking"],
  "kind.patrol": ["巡查", "Patrol"],
  "kind.emergency": ["应急", "Emergency"],
  "kind.notice": ["通知", "Notice"],
  "rstatus.pending": ["待接收", "Not yet acknowledged"],
  "rstatus.escalated": ["超时未接收", "Escalated"],
  "rstatus.acknowledged": ["已接收", "Acknowledged"],
  "rstatus.reported": ["已反馈", "Reported"],
  "istate.open": ["进行中", "Open"],
  "istate.done": ["已完成", "Done"],
  "istate.overdue": ["已逾期", "Overdue"],
  "istate.cancelled": ["已撤销", "Cancelled"],
  "tasking.compose": ["下达指令", "Send an instruction"],
  "tasking.kind": ["指令类型", "Kind"],
  "tasking.text": ["指令内容", "Instruction"],
  "tasking.text_ph": ["例如：18:00 前巡查东市场周边", "e.g. patrol the east market before 18:00"],
  "tasking.teams": ["队伍", "Teams"],
  "tasking.people": ["人员", "People"],
  "tasking.no_team": ["无队伍", "no team"],
  "tasking.case": ["关联案件编号（可选）", "Case no. (optional)"],
  "tasking.deadline": ["完成期限", "Deadline"],
  "tasking.deadline_in": ["{d}后", "in {d}"],
  "tasking.ack_within": ["接收时限（分钟）", "Acknowledge within (min)"],
  "tasking.send": ["一键下达", "Send"],
  "tasking.sent": ["指令已下达。", "Instruction sent."],
  "tasking.need_text": ["请填写指令内容。", "Write the instruction first."],
  "tasking.need_recipient": ["请至少选择一个队伍或人员。", "Pick at least one team or person."],
  "tasking.list": ["指令跟踪", "Instructions"],
  "tasking.empty": ["尚无指令。", "No instructions yet."],
  "tasking.from": ["下达人：{who}", "From {who}"],
  "tasking.progress": ["已接收 {acked}/{total} · 已反馈 {reported}/{total}", "Acknowledged {acked}/{total} · reported {reported}/{total}"],
  "tasking.waiting": ["未接收：{names}", "Not acknowledged: {names}"],
  "tasking.all_acked": ["全部已接收", "Everyone acknowledged"],
  "tasking.sep": ["、", ", "],
  "tasking.cancel": ["撤销指令", "Cancel instruction"],
  "tasking.cancelled": ["指令已撤销。", "Instruction cancelled."],
  "tasking.escalated": ["超时未接收：{name} · {text}", "Not acknowledged in time: {name} · {text}"],
  "tasking.escalated_at": ["升级于 {t}", "escalated {t}"],
  "tasking.reported_at": ["反馈于 {t}", "reported {t}"],
  "tasking.case_link": ["关联案件 #{id}", "case #{id}"],
  "field.instr_ack": ["确认接收", "Acknowledge"],
  "field.instr_acked": ["已确认接收。", "Acknowledged."],
  "field.instr_report": ["反馈完成情况", "Report"],
  "field.instr_reported": ["反馈已提交。", "Report sent."],
  "field.instr_new": ["新指令：{text}", "New instruction: {text}"],
  "field.instr_done": ["已反馈。", "Reported."],
  "field.instr_for": ["接收方：{who}", "For: {who}"],

  // statistics
  "tab.stats": ["统计分析", "Statistics"],
  "group.category": ["类别", "Category"],
  "group.source": ["来源", "Source"],
  "group.status": ["状态", "Status"],
  "group.region": ["区域", "Region"],
  "group.team": ["队伍", "Team"],
  "stats.from": ["开始日期", "From"],
  "stats.to": ["结束日期", "To"],
  "stats.group_by": ["分组", "Group by"],
  "stats.apply": ["查询", "Show"],
  "stats.last_days": ["近 {n} 天", "Last {n} days"],
  "stats.range": ["{from} 至 {to}", "{from} to {to}"],
  "stats.filed": ["立案", "Filed"],
  "stats.dispatched": ["派遣", "Dispatched"],
  "stats.handled": ["处置", "Handled"],
  "stats.handled_late": ["超时处置", "Handled late"],
  "stats.closed": ["结案", "Closed"],
  "stats.closure_rate": ["结案率", "Closure rate"],
  "stats.on_time_rate": ["按期结案率", "On-time rate"],
  "stats.overdue": ["超期", "Overdue"],
  "stats.overdue_open": ["当前超期", "Overdue now"],
  "stats.cases": ["案件数", "Cases"],
  "stats.daily": ["每日趋势", "Daily trend"],
  "stats.by_group": ["分组统计", "By group"],
  "stats.by_status": ["状态分布（本期受理）", "Status of the period's cases"],
  "stats.top": ["高发问题", "Recurring problems"],
  "stats.top_empty": ["暂无重复发生的问题。", "No recurring problems."],
  "stats.top_row": ["{n} 次 · 未结 {open}", "{n} times · {open} open"],
  "stats.camera": ["摄像机 #{id}", "camera #{id}"],
  "stats.no_team": ["未派遣", "Not dispatched"],
  "stats.empty": ["该时段没有案件。", "No cases in this period."],

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
  "err.not_connected": ["终端未接通，接通后自动显示画面。", "The terminal is not connected; its picture shows once it is."],
  "err.hub_full": ["服务器繁忙，稍后自动重试。", "The hub is busy; trying again shortly."],
  "err.server": ["服务器出错（{status}）。", "The hub answered with an error ({status})."],
  "err.unknown": ["操作失败。", "Something went wrong."],

  // field page: go live (WHIP)
  "live.title": ["现场直播", "Live video"],
  "live.hint": ["把手机摄像头和麦克风的画面实时传给指挥中心。", "Send this phone's camera and microphone to the command centre, live."],
  "live.start": ["开始直播", "Go live"],
  "live.stop": ["结束直播", "Stop"],
  "live.started": ["正在直播到指挥中心", "Live to the command centre"],
  "live.lost": ["直播连接中断", "The live connection was lost"],
  "live.state.idle": ["未直播", "Off"],
  "live.state.starting": ["连接中…", "Connecting…"],
  "live.state.live": ["直播中", "Live"],
  "live.state.error": ["失败", "Failed"],
  // console: field live (publishers)
  "tab.live": ["现场直播", "Field live"],
  "livewall.empty": ["目前没有现场人员在直播。", "Nobody in the field is live now."],
  "livewall.watch": ["观看", "Watch"],
  "livewall.stop": ["停止观看", "Stop watching"],
  "livewall.since": ["开始于 {time}", "since {time}"],
  "livewall.sound": ["有声音", "with sound"],
  "livewall.state.connecting": ["连接中", "connecting"],
  "livewall.state.online": ["直播中", "live"],
  "livewall.state.offline": ["已结束", "ended"],
  // evidence clips
  "clip.title": ["证据视频", "Evidence clip"],
  "clip.recording": ["视频录制中…", "Recording the clip…"],
  "clip.missing": ["视频缺失：{reason}", "Clip missing: {reason}"],
  "clip.reason.no_video": ["无画面", "no pictures"],
  "clip.reason.disk_full": ["磁盘已满", "disk full"],
  "clip.reason.write_failed": ["写入失败", "could not be written"],
  "clip.reason.no_budget": ["未启用录像", "recording is off"],
  "clip.reason.busy": ["录像任务过多", "too many clips at once"],
  "clip.reason.retention": ["已按存储策略删除", "deleted by the retention policy"],
  "clip.reason.stopped": ["系统停止", "the hub stopped"],
  // push-to-talk intercom
  "tab.intercom": ["集群对讲", "Intercom"],
  "action.ptt_burst": ["对讲讲话", "push-to-talk"],
  "action.call_started": ["视频通话开始", "video call started"],
  "action.call_ended": ["视频通话结束", "video call ended"],
  "action.call_snapshot": ["通话截图", "call snapshot"],
  "action.call_recording": ["通话录像", "call recorded"],
  "call.button": ["视频通话", "Call"],
  "call.title_case": ["案件 #{id} 视频通话", "Call for case #{id}"],
  "call.callee": ["呼叫对象", "Call"],
  "call.whole_team": ["{team}（全组）", "{team} (whole team)"],
  "call.no_callee": ["请选择呼叫对象", "Pick whom to call"],
  "call.place": ["呼叫", "Call"],
  "call.busy": ["已在通话中", "You are already in a call"],
  "call.incoming": ["{name} 发起视频通话", "{name} is calling you"],
  "call.answer": ["接听", "Answer"],
  "call.decline": ["拒绝", "Decline"],
  "call.hangup": ["挂断", "Hang up"],
  "call.cancel": ["取消呼叫", "Cancel call"],
  "call.ringing": ["正在呼叫…", "Ringing…"],
  "call.with": ["与 {name} 通话中", "In a call with {name}"],
  "call.waiting": ["等待对方视频…", "Waiting for video…"],
  "call.me": ["本机", "Me"],
  "call.snapshot": ["截图存入案件", "Snapshot to case"],
  "call.snapshot_done": ["截图已存入案件", "Snapshot added to the case"],
  "call.feed_kind": ["画面类型", "Feed type"],
  "call.feed.camera": ["摄像头", "Camera"],
  "call.feed.terminal": ["会议终端", "Conference terminal"],
  "call.feed_id": ["编号", "Id"],
  "call.add_feed": ["加入画面", "Add feed"],
  "call.ended": ["通话结束（{reason}）", "Call ended ({reason})"],
  "call.state.ringing": ["呼叫中", "ringing"],
  "call.state.active": ["通话中", "in call"],
  "call.state.ended": ["已结束", "ended"],
  "call.reason.hangup": ["挂断", "hung up"],
  "call.reason.declined": ["对方拒绝", "declined"],
  "call.reason.missed": ["无人接听", "no answer"],
  "call.reason.cancelled": ["已取消", "cancelled"],
  "call.reason.lost": ["连接中断", "connection lost"],
  "call.reason.closed": ["服务关闭", "hub shut down"],
  "ptt.title": ["集群对讲", "Push-to-talk intercom"],
  "ptt.no_rooms": ["没有可加入的对讲频道。", "No intercom channels for you."],
  "ptt.kind.team": ["班组", "Team"],
  "ptt.kind.region": ["区域", "Region"],
  "ptt.kind.case": ["案件", "Case"],
  "ptt.members": ["{n} 人在线", "{n} online"],
  "ptt.join": ["加入", "Join"],
  "ptt.leave": ["退出频道", "Leave"],
  "ptt.conn.connecting": ["连接中…", "connecting…"],
  "ptt.conn.live": ["已连接", "connected"],
  "ptt.conn.lost": ["连接中断", "connection lost"],
  "ptt.idle": ["空闲，无人讲话", "Idle: nobody is talking"],
  "ptt.talking": ["{name} 正在讲话", "{name} is talking"],
  "ptt.finishing": ["{name} 即将结束讲话", "{name} is finishing"],
  "ptt.you": ["你", "You"],
  "ptt.emergency_badge": ["紧急", "EMERGENCY"],
  "ptt.you_talk": ["你正在讲话，松开结束", "You are talking; let go to stop"],
  "ptt.requesting": ["正在申请话权…", "Asking for the floor…"],
  "ptt.queued": ["排队中，第 {n} 位", "Queued: number {n}"],
  "ptt.denied": ["话权被拒绝：{reason}", "Floor denied: {reason}"],
  "ptt.revoked": ["话权被收回：{reason}", "Floor taken back: {reason}"],
  "ptt.hint": ["按住按钮或空格键讲话", "Hold the button or the Space bar to talk"],
  "ptt.hold": ["按住讲话", "Hold to talk"],
  "ptt.release": ["松开结束", "Let go to stop"],
  "ptt.level": ["讲话音量", "Talker level"],
  "ptt.emergency": ["紧急呼叫（优先于所有人）", "Emergency (beats everyone)"],
  "ptt.revoke": ["收回话权", "Take the floor back"],
  "ptt.present": ["在线：{list}", "Present: {list}"],
  "ptt.queue": ["排队：{list}", "Waiting: {list}"],
  "ptt.case_channel": ["案件对讲", "Case channel"],
  "ptt.sep": ["、", ", "],
  "ptt.play": ["播放 {name} 的讲话（{s} 秒）", "Play {name} ({s} s)"],
  "ptt.reason.busy": ["有人正在讲话", "someone is talking"],
  "ptt.reason.queue_full": ["排队已满", "the queue is full"],
  "ptt.reason.preempted": ["更高优先级用户插话", "a higher priority took over"],
  "ptt.reason.max_talk": ["超过最长讲话时间", "maximum talk time reached"],
  "ptt.reason.no_media": ["未收到你的声音", "no audio from you"],
  "ptt.reason.left": ["已离开频道", "left the channel"],
  "ptt.reason.released": ["已松开", "released"],
  "ptt.reason.cancelled": ["已取消", "cancelled"],

  // workflow branches, deadlines and supervision (issue 5, part A)
  "status.reported": ["待立案", "Reported"],
  "status.evaluated": ["已回访", "Evaluated"],
  "status.refused": ["不予立案", "Not filed"],
  "status.returned": ["已退回待重派", "Returned"],
  "status.suspended": ["已挂起", "Suspended"],
  "task.returned": ["已退回", "Returned"],
  "source.hotline": ["热线来电", "hotline"],
  "source.patrol": ["巡查上报", "field patrol"],
  "action.intake": ["受理上报", "reported"],
  "action.refuse": ["不予立案", "not filed"],
  "action.return": ["退回（非本单位职责）", "returned (not our remit)"],
  "action.progress": ["反馈进展", "progress reported"],
  "action.request_extension": ["申请延期", "extension requested"],
  "action.approve_extension": ["批准延期", "extension approved"],
  "action.refuse_extension": ["驳回延期", "extension refused"],
  "action.suspend": ["挂起", "suspended"],
  "action.resume": ["恢复办理", "resumed"],
  "action.evaluate": ["回访评价", "return visit"],
  "action.warn": ["临期预警", "deadline warning"],
  "action.supervise": ["超时督办", "overdue: under supervision"],
  "action.remind": ["督办提醒", "supervision reminder"],
  "action.penalize": ["督办未响应，记扣分", "marked for penalty"],
  "clock.stage.dispatch": ["派遣时限", "dispatch limit"],
  "clock.stage.handle": ["处置时限", "handling limit"],
  "clock.state.running": ["计时中", "running"],
  "clock.state.warned": ["临期", "due soon"],
  "clock.state.overdue": ["超时督办中", "overdue, supervised"],
  "clock.state.penalized": ["已记扣分", "marked for penalty"],
  "clock.state.stopped": ["已停止", "stopped"],
  "clock.paused": ["（暂停计时）", "(paused)"],
  "clock.summary": ["{stage}：{state}{paused}，督办 {n} 次", "{stage}: {state}{paused}, {n} reminder(s)"],
  "limit.urgent_hours": ["{n} 小时（全天计）", "{n} h round the clock"],
  "limit.working_hours": ["{n} 个工作小时", "{n} working hours"],
  "limit.working_days": ["{n} 个工作日", "{n} working days"],
  "limit.calendar_days": ["{n} 个自然日", "{n} calendar days"],
  "case.supervision": ["督办", "Supervision"],
  "case.description": ["描述", "Description"],
  "case.contact": ["联系人", "Contact"],
  "case.satisfaction": ["满意度", "Satisfaction"],
  "case.extension": ["延期申请", "Extension request"],
  "case.extension_pending": ["申请延期 {limit}：{reason}", "Asks for {limit}: {reason}"],
  "case.new": ["新建案件", "New case"],
  "case.new_source": ["来源", "Source"],
  "case.new_category": ["类别", "Category"],
  "case.new_location": ["位置", "Location"],
  "case.new_description": ["问题描述", "What is wrong"],
  "case.new_contact": ["来电人及电话", "Caller and number"],
  "case.new_submit": ["提交受理", "Register"],
  "case.new_done": ["案件已受理，待立案。", "Case registered; waiting to be filed."],
  "case.location_required": ["请填写位置。", "Enter the location."],
  "case.file": ["立案", "File"],
  "case.refuse": ["不予立案", "Do not file"],
  "case.refuse_reason": ["不予立案理由", "Why it is not filed"],
  "case.auto_dispatch": ["按规则自动派遣", "Dispatch by rules"],
  "case.suspend": ["挂起", "Suspend"],
  "case.suspend_reason": ["挂起原因", "Why it is suspended"],
  "case.resume": ["恢复办理", "Resume"],
  "case.approve_extension": ["批准延期", "Approve extension"],
  "case.refuse_extension": ["驳回延期", "Refuse extension"],
  "case.refuse_extension_reason": ["驳回理由", "Why it is refused"],
  "case.evaluate": ["提交回访", "Record return visit"],
  "case.score": ["满意度（1–5）", "Satisfaction (1–5)"],
  "case.evaluate_note": ["回访记录", "Return visit note"],
  "case.export": ["导出打印版", "Export for printing"],
  "case.done_file": ["案件已立案。", "Case filed."],
  "case.done_refuse": ["已不予立案。", "Case not filed."],
  "case.done_suspend": ["案件已挂起。", "Case suspended."],
  "case.done_resume": ["案件已恢复办理。", "Case resumed."],
  "case.done_extension": ["延期申请已处理。", "Extension decided."],
  "case.done_evaluate": ["回访已记录。", "Return visit recorded."],
  "alert.warning": ["案件 #{id} 临近时限：{title}", "Case #{id} is due soon: {title}"],
  "alert.overdue": ["案件 #{id} 已超时，进入督办：{title}", "Case #{id} is overdue and under supervision: {title}"],
  "alert.reminder": ["督办提醒（第 {n} 次）：案件 #{id} {title}", "Reminder {n}: case #{id} {title}"],
  "alert.penalty": ["案件 #{id} 督办未响应，已记扣分", "Case #{id}: reminders unanswered, marked for penalty"],
  "field.return": ["退回（非本单位职责）", "Return (not our remit)"],
  "field.return_reason": ["退回理由", "Why it is not ours"],
  "field.progress": ["反馈进展", "Report progress"],
  "field.progress_note": ["进展说明", "Progress note"],
  "field.extension": ["申请延期", "Ask for more time"],
  "field.extension_amount": ["延期时长（按本时限单位）", "How much more (in the limit's units)"],
  "field.extension_reason": ["延期理由", "Why more time is needed"],
  "field.branch_done": ["已提交。", "Sent."],
  "field.note_required": ["请填写说明。", "Write a note first."],
  "field.patrol_report": ["巡查上报问题", "Report a problem from patrol"],

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
