// Every text of the regulator view, one catalogue per language. Chinese first; English as
// a switch (kept in the browser). Keys are used by app.js (t("key")) and by index.html
// (data-i18n="key").
"use strict";

const I18N = {
  zh: {
    title: "重大危险源监测预警 · 监管视图",
    logout: "退出",
    lang_switch: "English",
    live: "实时", reconnecting: "重连中…", connecting: "连接中…",
    callresponse: "预警叫应",
    enterprises: "企业与网关",
    active_alarms: "当前报警",
    live_events: "实时报警事件",
    history: "报警历史",
    no_gateways: "尚无网关上报。",
    no_alarms: "无当前报警。",
    no_occurrences: "无未结束的预警。",
    no_live: "本页打开以来无事件。（多个接入实例时，每个实例只显示其接收的事件。）",
    col_level: "等级", col_enterprise: "企业", col_gateway: "网关", col_sources: "危险源",
    col_connection: "连接", col_last_seen: "最后通讯", col_hazard_source: "危险源",
    col_point: "设备·测点", col_condition: "类型", col_value: "数值", col_limit: "限值",
    col_since: "开始时间", col_answer: "叫应", col_time: "时间", col_event: "事件",
    col_quality: "质量", col_flags: "标记", col_alarm: "报警", col_limits: "限值",
    col_unacked: "未确认", col_name: "名称", col_kind: "类别", col_grade: "等级",
    filter_site: "企业", filter_level: "最低等级", filter_from: "从", filter_to: "到",
    filter_show: "查询", any: "全部", all: "全部",
    normal: "正常", blue: "蓝色", yellow: "黄色", orange: "橙色", red: "红色",
    online: "在线", offline: "离线", unknown: "未知",
    clock_wrong: "⚠ 网关时钟错误",
    answer_open: "未确认", answer_acked: "已确认，待现场回执", answer_confirmed: "现场已确认",
    acknowledge: "确认", ack_prompt: "确认预警 — 处置说明（可选）：", ack_failed: "未能确认：",
    raise: "发生", escalate: "升级", deescalate: "降级", clear: "解除", ack: "确认",
    limit: "超限", rate: "变化过快", comm_loss: "通信中断", sensor_fault: "传感器故障",
    out_of_range: "超出量程", calibration: "标定超时", stuck_value: "数据长时间不变",
    impossible_jump: "数据异常跳变", linkage_failed: "联动失败", store_failed: "网关存储故障",
    rollup: "汇总等级",
    good: "良好", uncertain: "可疑", bad: "故障", silent: "无数据",
    flag_calibration: "标定", flag_stuck_value: "不变", flag_impossible_jump: "跳变",
    back: "返回", overview: "总览", enterprise: "企业", hazard_source: "危险源", point: "测点",
    gateways_of: "网关", points_of: "测点实时数据", trend: "趋势",
    span_1h: "1小时", span_6h: "6小时", span_24h: "24小时", span_7d: "7天", span_30d: "30天",
    no_master: "该网关尚未上报主数据：显示编号而非名称。",
    live_unavailable: "实时数据与趋势需要 VictoriaMetrics 的查询接口；InfluxDB 2.x 下不可用。",
    trend_empty: "该时段无数据。",
    events_n: "条事件", span_capped: "时间段已截为结束前31天", more_in_store: "库中还有更多：请缩小时间段",
    history_unavailable: "报警历史不可用：",
    ago_s: "秒前", ago_min: "分钟前", ago_h: "小时前",
    industry_hazardous_chemicals: "危险化学品", industry_tailings: "尾矿库", industry_mine: "矿山",
  },
  en: {
    title: "Major hazard sources · regulator view",
    logout: "Log out",
    lang_switch: "中文",
    live: "live", reconnecting: "reconnecting…", connecting: "connecting…",
    callresponse: "Call-response",
    enterprises: "Enterprises and gateways",
    active_alarms: "Active alarms",
    live_events: "Alarm events as they arrive",
    history: "Alarm history",
    no_gateways: "No gateway has reported yet.",
    no_alarms: "No active alarm.",
    no_occurrences: "No open alarm.",
    no_live: "None since this page opened. (With several ingest instances, each shows the events it took.)",
    col_level: "Level", col_enterprise: "Enterprise", col_gateway: "Gateway", col_sources: "Hazard sources",
    col_connection: "Connection", col_last_seen: "Last seen", col_hazard_source: "Hazard source",
    col_point: "Device · point", col_condition: "Condition", col_value: "Value", col_limit: "Limit",
    col_since: "Since", col_answer: "Answer", col_time: "Time", col_event: "Event",
    col_quality: "Quality", col_flags: "Flags", col_alarm: "Alarm", col_limits: "Limits",
    col_unacked: "Unacknowledged", col_name: "Name", col_kind: "Kind", col_grade: "Grade",
    filter_site: "Enterprise", filter_level: "Level at least", filter_from: "From", filter_to: "To",
    filter_show: "Show", any: "any", all: "all",
    normal: "normal", blue: "blue", yellow: "yellow", orange: "orange", red: "red",
    online: "online", offline: "offline", unknown: "unknown",
    clock_wrong: "⚠ gateway clock wrong",
    answer_open: "unacknowledged", answer_acked: "acknowledged, not yet at the edge", answer_confirmed: "confirmed at the edge",
    acknowledge: "Acknowledge", ack_prompt: "Acknowledge the alarm — note (optional):", ack_failed: "Not acknowledged: ",
    raise: "raise", escalate: "escalate", deescalate: "de-escalate", clear: "clear", ack: "ack",
    limit: "limit", rate: "rate", comm_loss: "comm loss", sensor_fault: "sensor fault",
    out_of_range: "out of range", calibration: "calibration overdue", stuck_value: "stuck value",
    impossible_jump: "impossible jump", linkage_failed: "linkage failed", store_failed: "store failed",
    rollup: "roll-up",
    good: "good", uncertain: "uncertain", bad: "bad", silent: "no data",
    flag_calibration: "calibration", flag_stuck_value: "stuck", flag_impossible_jump: "jump",
    back: "Back", overview: "Overview", enterprise: "Enterprise", hazard_source: "Hazard source", point: "Point",
    gateways_of: "Gateways", points_of: "Points, live", trend: "Trend",
    span_1h: "1 h", span_6h: "6 h", span_24h: "24 h", span_7d: "7 days", span_30d: "30 days",
    no_master: "This gateway has not sent master data yet: codes are shown instead of names.",
    live_unavailable: "Live values and trends need VictoriaMetrics' query API; unavailable with InfluxDB 2.x.",
    trend_empty: "No data in this span.",
    events_n: "events", span_capped: "span cut to the 31 days before its end", more_in_store: "more in the store: narrow the span",
    history_unavailable: "history unavailable: ",
    ago_s: "s ago", ago_min: "min ago", ago_h: "h ago",
    industry_hazardous_chemicals: "hazardous chemicals", industry_tailings: "tailings", industry_mine: "mine",
  },
};

let LANG = localStorage.getItem("lang") === "en" ? "en" : "zh";

function t(key) {
  return (I18N[LANG] && I18N[LANG][key]) ?? I18N.zh[key] ?? key;
}

function applyI18n() {
  document.documentElement.lang = LANG === "zh" ? "zh-CN" : "en";
  document.title = t("title");
  for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
}
