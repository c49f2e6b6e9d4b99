/* The staff console (GET /admin): a page that only calls the API with the signed-in key.
 *
 * The key lives in sessionStorage (this tab only) and travels as "Authorization: Bearer";
 * what the page shows follows from the API's answers for that key. Every text that comes from
 * data is written with textContent (the el() helper), never as HTML. No request leaves the
 * page's origin. Chinese by default, English on the header's button. */
(function () {
  "use strict";

  var KEY = "finder-console-key";
  var LANG = "finder-console-lang";
  var VOCAB = JSON.parse(document.body.dataset.vocabulary || "{}");
  var BASEMAP = JSON.parse(document.body.dataset.basemap || "null");
  var FIELDS = [
    ["name", "text"], ["kind", "kinds"], ["format", "formats"], ["address", "text"],
    ["district", "text"], ["access", "access"], ["organization", "text"],
    ["opening_hours", "text"], ["amenities", "text"], ["status", "statuses"],
    ["phone", "text"], ["operator", "text"], ["star_rating", "number"],
    ["area_m2", "number"], ["verified_at", "date"],
  ];

  var T = {
    zh: {
      title: "职工设施地图 · 管理台", tab_import: "导入", tab_edit: "编辑", tab_history: "历史",
      tab_export: "导出", tab_keys: "密钥", tab_reports: "报告",
      reports_title: "待处理的用户报告",
      reports_hint: "照片只有报告人和工作人员能看到；确认报告不会公开照片，需另外点“发布照片”。",
      no_reports: "没有待处理的报告。", counted: "已计入", report_photo: "报告照片",
      report_confirm: "确认", report_dismiss: "驳回", report_publish: "发布照片",
      report_confirmed: "已确认报告 {id}", report_dismissed: "已驳回报告 {id}",
      report_published: "照片已发布为设施 {id} 的照片",
      photos: "照片", no_photos: "还没有照片。", photo_add: "添加照片（会先在本机缩小）",
      photo_delete: "删除", photo_delete_ask: "删除这张照片？地图上将不再显示。",
      photo_delete_yes: "确认删除", photo_cancel: "取消", photo_deleted: "照片 {n} 已删除",
      photo_added: "已添加照片 {n}", photo_by: "{actor} 添加于 {at}", signout: "退出", signin_title: "用 API 密钥登录",
      key_label: "API 密钥", signin: "登录",
      signin_hint: "密钥只保存在本标签页中，关闭或退出即忘记。", import_title: "导入名单",
      step_file: "选择文件", step_check: "检查与修正", step_commit: "提交",
      file: "文件（CSV / XLSX / GeoJSON）", crs: "坐标系", crs_auto: "按表头判断",
      default_access: "缺少开放对象时", none: "（拒绝该行）", dry_run: "检查（不写入）",
      recheck: "按修正重新检查", download_rejects: "下载待修正行（CSV）", commit: "提交导入",
      rejected_rows: "被拒绝的行（可直接修改单元格）", accepted_rows: "可导入的行",
      download_report: "下载导入报告", search_placeholder: "名称、编号或区", position: "位置",
      lon: "经度", lat: "纬度", apply_coords: "移到此坐标",
      drag_hint: "也可以在地图上拖动标记。", save: "保存",
      conflict_title: "别人刚刚修改了这个设施", conflict_hint: "请选择保留哪个版本。",
      keep_mine: "保留我的修改", take_theirs: "采用对方的版本", facility_id: "设施编号",
      show: "查看", org_changes: "最近的修改", export_title: "导出与打印",
      export_hint: "只包含本密钥可以看到的设施。", district: "区",
      print_sheet: "打印本区覆盖情况图（PDF）", print_atlas: "覆盖情况图集（PDF，每区一页）", keys_title: "API 密钥", new_key: "新建密钥",
      key_name: "名称", scopes: "权限", organizations: "单位（逗号分隔）", member: "工会会员",
      expires: "最后有效日", create: "创建",
      secret_once: "这是新密钥，只显示这一次，请立即复制保存：",
      row: "行", status: "结果", key_status: "状态", reason: "原因", id: "编号", changes: "变更",
      s_new: "新增", s_updated: "更新", s_unchanged: "未变", revoke: "吊销", revert: "撤销此修改",
      summary: "共 {total} 行：可导入 {accepted} 行，拒绝 {rejected} 行，警告 {warnings} 条",
      final: "已写入：新增 {inserted}，更新 {updated}，未变 {unchanged}；拒绝 {rejected} 行",
      truncated: "（只列出前 {n} 行）", saved: "已保存", reverted: "已撤销",
      uploading: "上传中…", checking: "检查中…", writing: "写入中…", yours: "我的修改",
      theirs: "对方的版本", field: "字段", history_of: "{name}（{id}）的修改记录",
      no_entries: "没有记录", signed_in: "{name}", unknown_key: "密钥无效或已吊销",
      active: "有效", revoked: "已吊销", expired: "已过期", not_allowed: "此密钥没有编辑权限",
      no_org_trail: "此密钥只能查看单个设施的修改记录（全部记录需要 read-all 权限或所属单位）",
      f_name: "名称", f_kind: "类型", f_format: "形式", f_address: "地址", f_district: "区",
      f_access: "开放对象", f_organization: "所属单位", f_opening_hours: "开放时间",
      f_amenities: "设施（用 ; 分隔）", f_status: "状态", f_phone: "电话", f_operator: "运营方",
      f_star_rating: "星级", f_area_m2: "面积（㎡）", f_verified_at: "核实日期",
      f_lon: "经度", f_lat: "纬度", f_adcode: "区划代码", f_city: "市", f_province: "省",
      f_source_crs: "原坐标系", f_source: "来源", f_id: "编号",
      a_create: "新建", a_update: "导入更新", a_patch: "修改", a_replace: "替换", a_delete: "删除",
      a_photo_add: "添加照片", a_photo_delete: "撤下照片", f_photo: "照片编号",
    },
    en: {
      title: "Facility finder · staff console", tab_import: "Import", tab_edit: "Edit",
      tab_history: "History", tab_export: "Export", tab_keys: "Keys", signout: "Sign out",
      tab_reports: "Reports", reports_title: "Users' reports to handle",
      reports_hint: "Photos are seen by the reporter and staff only; confirming a report does not publish its photo: press \u201cPublish photo\u201d for that.",
      no_reports: "No reports to handle.", counted: "counts", report_photo: "Report photo",
      report_confirm: "Confirm", report_dismiss: "Dismiss", report_publish: "Publish photo",
      report_confirmed: "Report {id} confirmed", report_dismissed: "Report {id} dismissed",
      report_published: "The photo is now a photo of facility {id}",
      photos: "Photos", no_photos: "No photos yet.",
      photo_add: "Add a photo (shrunk on this device first)", photo_delete: "Delete",
      photo_delete_ask: "Delete this photo? The map stops showing it.",
      photo_delete_yes: "Yes, delete", photo_cancel: "Cancel", photo_deleted: "Photo {n} deleted",
      photo_added: "Photo {n} added", photo_by: "added by {actor} on {at}",
      signin_title: "Sign in with an API key", key_label: "API key", signin: "Sign in",
      signin_hint: "The key stays in this tab only; closing it or signing out forgets it.",
      import_title: "Import a list", step_file: "Choose a file", step_check: "Check and fix",
      step_commit: "Commit", file: "File (CSV / XLSX / GeoJSON)", crs: "Coordinate system",
      crs_auto: "From the headers", default_access: "Rows without access class",
      none: "(reject the row)", dry_run: "Check (write nothing)", recheck: "Check again with fixes",
      download_rejects: "Download rows to fix (CSV)", commit: "Commit import",
      rejected_rows: "Rejected rows (edit the cells here)", accepted_rows: "Rows to import",
      download_report: "Download the import report", search_placeholder: "Name, id or district",
      position: "Position", lon: "Longitude", lat: "Latitude", apply_coords: "Move here",
      drag_hint: "Or drag the marker on the map.", save: "Save",
      conflict_title: "Someone else just changed this facility",
      conflict_hint: "Choose which version to keep.", keep_mine: "Keep my changes",
      take_theirs: "Take their version", facility_id: "Facility id", show: "Show",
      org_changes: "Recent changes", export_title: "Export and print",
      export_hint: "Only the facilities this key may see.", district: "District",
      print_sheet: "Print the district's coverage sheet (PDF)",
      print_atlas: "Coverage atlas (PDF, a page per district)", keys_title: "API keys", new_key: "New key",
      key_name: "Name", scopes: "Scopes", organizations: "Organisations (comma separated)",
      member: "Union member", expires: "Last valid day", create: "Create",
      secret_once: "The new key, shown this once only; copy it now:",
      row: "Row", status: "Result", key_status: "Status", reason: "Reason", id: "Id", changes: "Changes",
      s_new: "new", s_updated: "updated", s_unchanged: "unchanged", revoke: "Revoke",
      revert: "Revert this change",
      summary: "{total} rows: {accepted} to import, {rejected} rejected, {warnings} warnings",
      final: "Written: {inserted} new, {updated} updated, {unchanged} unchanged; {rejected} rejected",
      truncated: " (first {n} rows only)", saved: "Saved", reverted: "Reverted",
      uploading: "Uploading…", checking: "Checking…", writing: "Writing…", yours: "Mine",
      theirs: "Theirs", field: "Field", history_of: "Changes of {name} ({id})",
      no_entries: "No entries", signed_in: "{name}", unknown_key: "Unknown or revoked key",
      active: "active", revoked: "revoked", expired: "expired",
      not_allowed: "This key may not edit",
      no_org_trail: "This key reads the history of single facilities only (all changes need "
        + "the read-all scope or organisations)",
      f_name: "Name", f_kind: "Kind", f_format: "Format", f_address: "Address",
      f_district: "District", f_access: "Access", f_organization: "Organisation",
      f_opening_hours: "Opening hours", f_amenities: "Amenities (; separated)",
      f_status: "Status", f_phone: "Phone", f_operator: "Operator", f_star_rating: "Stars",
      f_area_m2: "Area (m²)", f_verified_at: "Verified on", f_lon: "Longitude",
      f_lat: "Latitude", f_adcode: "Adcode", f_city: "City", f_province: "Province",
      f_source_crs: "Source CRS", f_source: "Source", f_id: "Id",
      a_create: "created", a_update: "updated by import", a_patch: "edited",
      a_replace: "replaced", a_delete: "deleted",
      a_photo_add: "photo added", a_photo_delete: "photo taken down", f_photo: "Photo number",
    },
  };
  var lang = localStorage.getItem(LANG) === "en" ? "en" : "zh";

  function t(name, values) {
    var text = (T[lang][name] || T.zh[name] || name);
    return text.replace(/\{(\w+)\}/g, function (_, k) {
      return values && values[k] !== undefined ? String(values[k]) : "";
    });
  }
  function fieldLabel(field) { return t("f_" + field); }

  function $(id) { return document.getElementById(id); }
  /* An element with attributes and children; strings become text nodes (never HTML). */
  function el(tag, attrs) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : String(v));
    });
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined) continue;
      node.appendChild(typeof child === "string" || typeof child === "number"
        ? document.createTextNode(String(child)) : child);
    }
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
  function show(node, on) { node.hidden = !on; }
  function toast(text) {
    var box = $("toast");
    box.textContent = text;
    box.classList.add("on");
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { box.classList.remove("on"); }, 3000);
  }
  function valueText(v) {
    if (v === null || v === undefined || v === "") return "—";
    if (Array.isArray(v)) return v.join(";");
    return String(v);
  }

  /* An ISO time as the browser's local date and time (China time in Chinese offices). */
  function localTime(iso) {
    var moment = new Date(iso);
    return isNaN(moment) ? String(iso) : moment.toLocaleString(lang === "zh" ? "zh-CN" : "en-GB",
      { hour12: false });
  }

  function translate() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.querySelectorAll("[data-t]").forEach(function (n) { n.textContent = t(n.dataset.t); });
    document.querySelectorAll("[data-tp]").forEach(function (n) { n.placeholder = t(n.dataset.tp); });
    document.title = t("title");
    $("lang").textContent = lang === "zh" ? "English" : "中文";
  }

  /* ---- the API ------------------------------------------------------------------------- */
  function key() { return sessionStorage.getItem(KEY); }
  function headers(extra) {
    var h = Object.assign({ Accept: "application/json" }, extra || {});
    if (key()) h.Authorization = "Bearer " + key();
    return h;
  }
  function ApiError(status, problem) {
    this.status = status;
    this.problem = problem || {};
    this.message = (problem && (problem.detail || problem.title)) || "HTTP " + status;
  }
  function readBody(response) {
    var type = response.headers.get("content-type") || "";
    return type.indexOf("json") >= 0 ? response.json() : response.blob();
  }
  function api(method, path, options) {
    options = options || {};
    var init = { method: method, headers: headers(options.headers), credentials: "omit" };
    if (options.json !== undefined) {
      init.body = JSON.stringify(options.json);
      init.headers["Content-Type"] = options.contentType || "application/json";
    } else if (options.body !== undefined) {
      init.body = options.body;
    }
    return fetch(path, init).then(function (response) {
      return readBody(response).then(function (body) {
        if (!response.ok) throw new ApiError(response.status, body);
        return { body: body, etag: response.headers.get("ETag"), response: response };
      });
    });
  }
  function failed(target) {
    return function (error) {
      var node = typeof target === "string" ? $(target) : target;
      if (error && error.status === 401 && key()) { signOut(t("unknown_key")); return; }
      node.textContent = error && error.message ? error.message : String(error);
    };
  }
  function download(blob, name) {
    var url = URL.createObjectURL(blob);
    var a = el("a", { href: url, download: name });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
  }

  /* ---- session ------------------------------------------------------------------------- */
  var session = null;

  function signIn(event) {
    event.preventDefault();
    var value = $("key").value.trim();
    if (!value) return;
    sessionStorage.setItem(KEY, value);
    $("key").value = "";
    start();
  }
  function signOut(message) {
    sessionStorage.removeItem(KEY);
    session = null;
    facilities = [];
    if (markers) markers.clearLayers();
    clearSelection();
    ["rejected-table", "accepted-table", "history-list", "org-list", "keys-table", "results",
      "who", "reports-list"].forEach(function (id) { clear($(id)); });
    imported = null;
    $("key-secret-text").textContent = "";
    show($("key-secret"), false);
    show($("import-result"), false);
    show($("import-done"), false);
    show($("tabs"), false);
    show($("signout"), false);
    document.querySelectorAll(".page").forEach(function (p) { show(p, p.id === "signin"); });
    $("signin-error").textContent = typeof message === "string" ? message : "";
  }
  function start() {
    if (!key()) { signOut(); return; }
    api("GET", "/admin/session").then(function (r) {
      session = r.body;
      $("who").textContent = t("signed_in", { name: session.name });
      show($("tabs"), true);
      show($("signout"), true);
      var tabs = document.querySelectorAll("#tabs [data-tab]");
      var editor = session.scopes.indexOf("edit") >= 0;
      tabs.forEach(function (b) {
        var tab = b.dataset.tab;
        b.hidden = tab === "keys" ? session.scopes.indexOf("admin") < 0
          : (tab === "import" || tab === "edit" || tab === "history" || tab === "reports")
            ? !editor : false;
      });
      openTab(editor ? "import" : session.scopes.indexOf("admin") >= 0 ? "keys" : "export");
    }).catch(function (error) {
      signOut(error.status === 401 ? t("unknown_key") : error.message);
    });
  }
  function openTab(name) {
    document.querySelectorAll(".page").forEach(function (p) { show(p, p.id === name); });
    document.querySelectorAll("#tabs [data-tab]").forEach(function (b) {
      b.classList.toggle("on", b.dataset.tab === name);
    });
    if (name === "edit") enterEdit();
    if (name === "history") loadOrgChanges();
    if (name === "keys") loadKeys();
    if (name === "reports") loadReports();
    if (name === "export") loadDistricts();
  }

  /* ---- users' reports ------------------------------------------------------------------ */
  /* The pending reports of the facilities this key may edit, each with its photo's thumbnail
   * (fetched with the key: the photo is never public) and confirm / dismiss; a confirmed
   * report's photo becomes a facility photo only when staff press "publish". */
  function loadReports() {
    var list = clear($("reports-list"));
    $("reports-error").textContent = "";
    api("GET", "/reports?status=pending&limit=200").then(function (r) {
      if (!r.body.reports.length) list.appendChild(el("li", { class: "hint", text: t("no_reports") }));
      r.body.reports.forEach(function (report) { list.appendChild(reportItem(report)); });
    }).catch(failed("reports-error"));
  }
  function reportItem(report) {
    var labels = (VOCAB.labels[lang] || {}).report || {};
    var item = el("li", { class: "report", dataset: { id: String(report.id) } },
      el("strong", { text: labels[report.type] || report.type }), " · ",
      el("span", { class: "report-facility", title: report.facility_id,
                   text: report.facility_name || report.facility_id }), " · ",
      localTime(report.created_at),
      report.counted ? el("span", { class: "report-counted", text: " " + t("counted") }) : null,
      report.note ? el("p", { class: "report-note", text: report.note }) : null);
    if (report.photo_url) {
      var photo = el("img", { class: "report-photo", alt: t("report_photo") });
      item.appendChild(photo);
      api("GET", report.photo_url, { headers: { Accept: "image/jpeg" } }).then(function (r) {
        photo.src = URL.createObjectURL(r.body);
      }).catch(failed("reports-error"));
    }
    var actions = el("div", { class: "row" });
    function act(action, done) {
      return el("button", { type: "button", class: "report-" + action, text: t("report_" + action),
        onclick: function () {
          api("POST", "/reports/" + report.id + (action === "publish" ? "/photo/publish" : "/" + action))
            .then(done).catch(failed("reports-error"));
        } });
    }
    actions.appendChild(act("confirm", function () {
      toast(t("report_confirmed", { id: report.id }));
      if (!report.photo_url) { item.remove(); return; }
      clear(actions).appendChild(act("publish", function () {
        toast(t("report_published", { id: report.facility_id }));
        item.remove();
      }));
    }));
    actions.appendChild(act("dismiss", function () {
      toast(t("report_dismissed", { id: report.id }));
      item.remove();
    }));
    item.appendChild(actions);
    return item;
  }

  /* ---- import -------------------------------------------------------------------------- */
  var imported = null; // {file, result, fixes: {row: {header: text}}}

  function importForm(dryRun, report) {
    var form = new FormData();
    form.append("file", imported.file, imported.file.name);
    if ($("import-crs").value) form.append("crs", $("import-crs").value);
    if ($("import-access").value) form.append("access", $("import-access").value);
    form.append("dry_run", dryRun ? "true" : "false");
    if (report) form.append("report", report);
    if (Object.keys(imported.fixes).length) form.append("fixes", JSON.stringify(imported.fixes));
    return form;
  }
  /* POST the import form with upload progress (XMLHttpRequest: fetch reports none). */
  function sendImport(form, label) {
    var bar = $("import-progress");
    $("import-error").textContent = "";
    show(bar, true);
    bar.value = 0;
    toast(t("uploading"));
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open("POST", "/facilities/import");
      var h = headers();
      Object.keys(h).forEach(function (k) { xhr.setRequestHeader(k, h[k]); });
      xhr.responseType = "blob";
      xhr.upload.onprogress = function (e) {
        if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total);
      };
      xhr.upload.onload = function () { bar.removeAttribute("value"); toast(label); };
      xhr.onerror = function () { show(bar, false); reject(new ApiError(0, { detail: "network" })); };
      xhr.onload = function () {
        show(bar, false);
        var blob = xhr.response;
        var type = xhr.getResponseHeader("content-type") || "";
        if (type.indexOf("json") < 0) {
          if (xhr.status < 300) resolve(blob); else reject(new ApiError(xhr.status, {}));
          return;
        }
        blob.text().then(function (text) {
          var body = JSON.parse(text);
          if (xhr.status < 300) resolve(body); else reject(new ApiError(xhr.status, body));
        });
      };
      xhr.send(form);
    });
  }
  function setStep(n) {
    document.querySelectorAll(".steps li").forEach(function (li) {
      li.classList.toggle("on", Number(li.dataset.step) === n);
    });
  }
  function dryRun() {
    return sendImport(importForm(true), t("checking")).then(function (result) {
      imported.result = result;
      renderDryRun(result);
      setStep(2);
    }).catch(failed("import-error"));
  }
  function renderDryRun(result) {
    show($("import-result"), true);
    show($("import-done"), false);
    $("import-summary").textContent = t("summary", {
      total: result.total_rows, accepted: result.accepted, rejected: result.rejected,
      warnings: result.warnings,
    }) + (result.rows_truncated ? t("truncated", { n: result.rows.length }) : "");
    $("import-commit").disabled = result.accepted === 0;
    renderRejected(result);
    renderAccepted(result);
  }
  function renderRejected(result) {
    var table = clear($("rejected-table"));
    var byRow = {};
    result.issues.forEach(function (i) {
      if (i.level !== "rejected") return;
      (byRow[i.row] = byRow[i.row] || []).push(i);
    });
    var rows = result.rejected_rows;
    var headers = rows.length ? Object.keys(rows[0].cells) : [];
    var head = el("tr", null, el("th", { text: t("row") }), el("th", { text: t("reason") }));
    headers.forEach(function (h) { head.appendChild(el("th", { text: h })); });
    table.appendChild(el("thead", null, head));
    var body = el("tbody");
    var listed = {};
    rows.forEach(function (r) {
      listed[r.row] = true;
      var issues = byRow[r.row] || [];
      var bad = {};
      issues.forEach(function (i) { bad[i.field] = true; });
      var tr = el("tr", { dataset: { row: r.row } }, el("td", { text: String(r.row) }),
        el("td", { class: "reason", text: issues.map(function (i) { return i.reason; }).join("；") }));
      headers.forEach(function (h) {
        var fixed = imported.fixes[r.row] && imported.fixes[r.row][h];
        var value = fixed !== undefined ? fixed : r.cells[h];
        var input = el("input", { value: value, "aria-label": h, dataset: { header: h } });
        input.addEventListener("change", function () {
          imported.fixes[r.row] = imported.fixes[r.row] || {};
          imported.fixes[r.row][h] = input.value;
          input.classList.add("fixed");
        });
        var field = result.headers[h];
        var td = el("td", { class: field && bad[field] ? "bad" : null }, input);
        if (field && bad[field]) td.title = issues.filter(function (i) { return i.field === field; })
          .map(function (i) { return i.reason; }).join("；");
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    // rows the reader could not split have no cells to fix here (download them instead)
    Object.keys(byRow).forEach(function (row) {
      if (listed[row]) return;
      body.appendChild(el("tr", { dataset: { row: row } }, el("td", { text: row }),
        el("td", { class: "reason", text: byRow[row].map(function (i) { return i.reason; }).join("；") })));
    });
    table.appendChild(body);
  }
  function renderAccepted(result) {
    var table = clear($("accepted-table"));
    table.appendChild(el("thead", null, el("tr", null, el("th", { text: t("row") }),
      el("th", { text: t("id") }), el("th", { text: fieldLabel("name") }),
      el("th", { text: t("status") }), el("th", { text: t("changes") }))));
    var body = el("tbody");
    result.rows.forEach(function (r) {
      var diff = el("ul", { class: "diff" });
      Object.keys(r.diff).forEach(function (f) {
        diff.appendChild(el("li", null, el("b", { text: fieldLabel(f) + " " }),
          el("del", { text: valueText(r.diff[f][0]) }), " → ", el("ins", { text: valueText(r.diff[f][1]) })));
      });
      body.appendChild(el("tr", { class: "s-" + r.status, dataset: { row: r.row } },
        el("td", { text: String(r.row) }), el("td", { text: r.id }), el("td", { text: r.name }),
        el("td", { text: t("s_" + r.status) }), el("td", null, diff)));
    });
    table.appendChild(body);
  }
  function commitImport() {
    $("import-commit").disabled = true;
    sendImport(importForm(false), t("writing")).then(function (result) {
      imported.final = result;
      setStep(3);
      show($("import-result"), false);
      show($("import-done"), true);
      $("import-final").textContent = t("final", result);
      facilities = []; // the registry changed: reload the map's facilities when next shown
    }).catch(function (error) {
      $("import-commit").disabled = false;
      failed("import-error")(error);
    });
  }

  /* ---- edit on the map ----------------------------------------------------------------- */
  var map = null, markers = null, index = null, facilities = [], byId = {};
  var selected = null; // {facility, etag, marker}

  function enterEdit() {
    if (!map) makeMap();
    setTimeout(function () { map.invalidateSize(); }, 0);
    if (!facilities.length) loadFacilities();
  }
  function makeMap() {
    map = L.map("map", { zoomControl: true, attributionControl: true }).setView([31.23, 121.47], 11);
    if (BASEMAP && window.FacilityBasemap) window.FacilityBasemap.add(map, BASEMAP);
    markers = L.layerGroup().addTo(map);
    map.on("moveend zoomend", function () {
      $("map").dataset.zoom = String(map.getZoom());
      drawClusters();
    });
    $("map").dataset.zoom = String(map.getZoom());
  }
  function loadFacilities() {
    var all = [];
    function page(offset) {
      return api("GET", "/collections/facilities/items?limit=10000&offset=" + offset)
        .then(function (r) {
          all = all.concat(r.body.features);
          if (r.body.features.length === 10000) return page(offset + 10000);
          return all;
        });
    }
    return page(0).then(function (features) {
      facilities = features;
      byId = {};
      features.forEach(function (f) { byId[f.id] = f; });
      index = new Supercluster({ radius: 50, maxZoom: 16 });
      index.load(features.map(function (f) {
        return { type: "Feature", geometry: f.geometry, properties: { id: f.id } };
      }));
      drawClusters();
      search();
    }).catch(function (error) { toast(error.message); });
  }
  function drawClusters() {
    if (!index || !markers) return;
    markers.clearLayers();
    var b = map.getBounds();
    var items = index.getClusters([b.getWest(), b.getSouth(), b.getEast(), b.getNorth()],
      Math.round(map.getZoom()));
    items.forEach(function (c) {
      var ll = [c.geometry.coordinates[1], c.geometry.coordinates[0]];
      if (c.properties.cluster) {
        var count = c.properties.point_count;
        var marker = L.marker(ll, { icon: L.divIcon({ html: el("span", { text: String(count) }),
          className: "cluster", iconSize: [34, 34] }) });
        marker.on("click", function () {
          map.setView(ll, index.getClusterExpansionZoom(c.properties.cluster_id));
        });
        markers.addLayer(marker);
      } else {
        var id = c.properties.id;
        if (selected && selected.facility.id === id) return;
        var dot = L.circleMarker(ll, { radius: 7, weight: 2, color: "#fff", fillColor: "#c2255c",
          fillOpacity: 0.9, className: "dot" });
        // an element, not a string: Leaflet would write a string as HTML
        dot.bindTooltip(el("span", { text: byId[id] ? byId[id].properties.name : id }));
        dot.on("click", function () { select(id); });
        markers.addLayer(dot);
      }
    });
  }
  function matches(f, q) {
    var p = f.properties;
    return [f.id, p.name, p.district, p.address, p.adcode].some(function (v) {
      return v && String(v).toLowerCase().indexOf(q) >= 0;
    });
  }
  function search() {
    var q = $("search").value.trim().toLowerCase();
    var list = clear($("results"));
    if (!q) return;
    facilities.filter(function (f) { return matches(f, q); }).slice(0, 50).forEach(function (f) {
      list.appendChild(el("li", null, el("button", { type: "button", dataset: { id: f.id },
        onclick: function () { select(f.id); } },
        el("b", { text: f.properties.name }), " ", el("small", { text: f.id + " · " + valueText(f.properties.district) }))));
    });
  }
  function clearSelection() {
    if (selected && selected.marker && map) map.removeLayer(selected.marker);
    selected = null;
    show($("facility-form"), false);
    show($("conflict"), false);
    show($("photos"), false);
    clear($("photo-list"));
  }
  function select(id) {
    openTabIfNeeded("edit");
    return api("GET", "/facilities/" + encodeURIComponent(id)).then(function (r) {
      clearSelection();
      selected = { facility: r.body, etag: r.etag, marker: null, pending: null };
      fillForm(r.body);
      loadPhotos(id);
      var ll = [r.body.lat, r.body.lon];
      selected.marker = L.marker(ll, { draggable: true, autoPan: true,
        icon: L.divIcon({ className: "selected", iconSize: [22, 22] }) }).addTo(map);
      selected.marker.on("dragend", function () {
        var p = selected.marker.getLatLng();
        setPoint(p.lng, p.lat, "wgs84");
      });
      map.setView(ll, 17);
      drawClusters();
    }).catch(failed("form-error"));
  }
  /* ---- a facility's photos: each with a delete button (asks once more), and an upload
   * shrunk in the browser first (photoshrink.js); thumbnails fetched with the key, as a
   * hidden facility's photos are not public. ----------------------------------------------- */
  function loadPhotos(id) {
    var list = clear($("photo-list"));
    $("photo-error").textContent = "";
    $("photo-file").value = "";
    show($("photos"), true);
    return api("GET", "/facilities/" + encodeURIComponent(id) + "/photos").then(function (r) {
      if (!selected || selected.facility.id !== id) return;
      var shown = r.body.photos.filter(function (p) { return p.url; });
      if (!shown.length) list.appendChild(el("li", { class: "hint", text: t("no_photos") }));
      shown.forEach(function (p) { list.appendChild(photoItem(id, p)); });
    }).catch(failed("photo-error"));
  }
  function photoItem(id, p) {
    var img = el("img", { class: "facility-photo", alt: t("photos") + " " + p.n });
    var item = el("li", { class: "photo", dataset: { n: String(p.n) } }, img,
      el("small", { text: t("photo_by", { actor: p.actor, at: localTime(p.created_at) }) }));
    api("GET", p.thumb_url, { headers: { Accept: "image/jpeg" } }).then(function (r) {
      img.src = URL.createObjectURL(r.body);
    }).catch(failed("photo-error"));
    var actions = el("div", { class: "row" });
    function ask() {
      clear(actions).appendChild(el("span", { class: "photo-ask", text: t("photo_delete_ask") }));
      actions.appendChild(el("button", { type: "button", class: "photo-delete-yes danger",
        text: t("photo_delete_yes"), onclick: function () {
          api("DELETE", p.url).then(function () {
            toast(t("photo_deleted", { n: p.n }));
            loadPhotos(id);
          }).catch(failed("photo-error"));
        } }));
      actions.appendChild(el("button", { type: "button", class: "photo-cancel",
        text: t("photo_cancel"), onclick: idle }));
    }
    function idle() {
      clear(actions).appendChild(el("button", { type: "button", class: "photo-delete",
        text: t("photo_delete"), onclick: ask }));
    }
    idle();
    item.appendChild(actions);
    return item;
  }
  function addPhoto() {
    var file = $("photo-file").files[0];
    if (!file || !selected) return;
    var id = selected.facility.id;
    $("photo-error").textContent = "";
    toast(t("uploading"));
    window.FinderPhotos.shrink(file, VOCAB.photo_side_px).then(function (upload) {
      return api("POST", "/facilities/" + encodeURIComponent(id) + "/photos", {
        body: upload, headers: { "Content-Type": upload.type || "application/octet-stream" } });
    }).then(function (r) {
      toast(t("photo_added", { n: r.body.n }));
      loadPhotos(id);
    }).catch(failed("photo-error"));
  }

  function openTabIfNeeded(name) {
    if ($(name).hidden) openTab(name);
  }
  function fillForm(f) {
    var box = clear($("form-fields"));
    $("form-title").textContent = f.name + " · " + f.id;
    FIELDS.forEach(function (spec) {
      var name = spec[0], kind = spec[1], input;
      var value = f[name];
      if (VOCAB[kind]) {
        input = el("select", { name: name });
        if (name === "format") input.appendChild(el("option", { value: "", text: "—" }));
        VOCAB[kind].forEach(function (v) {
          var labels = (VOCAB.labels[lang] || {})[kind === "kinds" ? "kind" : kind] || {};
          input.appendChild(el("option", { value: v, text: labels[v] ? labels[v] + " (" + v + ")" : v }));
        });
        input.value = value || "";
      } else {
        input = el("input", { name: name, type: kind === "date" ? "date" : "text",
          inputmode: kind === "number" ? "decimal" : null });
        input.value = Array.isArray(value) ? value.join(";") : value === null ? "" : String(value);
      }
      box.appendChild(el("label", { dataset: { field: name } }, el("span", { text: fieldLabel(name) }),
        input, el("small", { class: "field-error" })));
    });
    $("f-lon").value = Number(f.lon).toFixed(7);
    $("f-lat").value = Number(f.lat).toFixed(7);
    $("f-crs").value = "wgs84";
    $("form-error").textContent = "";
    show($("facility-form"), true);
    show($("conflict"), false);
    showGcj(f.lon, f.lat, "wgs84");
  }
  function showGcj(lon, lat, crs) {
    api("GET", "/admin/point?lon=" + lon + "&lat=" + lat + "&crs=" + crs).then(function (r) {
      var g = r.body.gcj02, w = r.body.wgs84;
      $("f-gcj").textContent = "WGS-84 " + w[0].toFixed(6) + ", " + w[1].toFixed(6) +
        " · GCJ-02 " + g[0].toFixed(6) + ", " + g[1].toFixed(6);
    }).catch(failed("f-gcj"));
  }
  function setPoint(lon, lat, crs) {
    $("f-lon").value = Number(lon).toFixed(7);
    $("f-lat").value = Number(lat).toFixed(7);
    $("f-crs").value = crs;
    showGcj(lon, lat, crs);
  }
  function applyCoords() {
    var lon = Number($("f-lon").value), lat = Number($("f-lat").value), crs = $("f-crs").value;
    api("GET", "/admin/point?lon=" + lon + "&lat=" + lat + "&crs=" + crs).then(function (r) {
      var w = r.body.wgs84;
      selected.marker.setLatLng([w[1], w[0]]);
      map.panTo([w[1], w[0]]);
      showGcj(lon, lat, crs);
    }).catch(failed("form-error"));
  }
  /* The form's changes against the facility as loaded: a JSON merge patch. */
  function formChanges() {
    var f = selected.facility, changes = {};
    FIELDS.forEach(function (spec) {
      var name = spec[0], kind = spec[1];
      var input = document.querySelector('#form-fields [name="' + name + '"]');
      var text = input.value.trim();
      var value;
      if (name === "amenities") value = text ? text.split(/[;；,，]/).map(function (s) { return s.trim(); }).filter(Boolean) : [];
      else if (kind === "number") value = text === "" ? null : Number(text);
      else value = text === "" ? null : text;
      var before = f[name];
      if (JSON.stringify(before === undefined ? null : before) !== JSON.stringify(value)) changes[name] = value;
    });
    var lon = Number($("f-lon").value), lat = Number($("f-lat").value), crs = $("f-crs").value;
    // the form shows 7 decimals (about 1 cm): a smaller difference is no move
    if (crs !== "wgs84" || Math.abs(lon - f.lon) > 1e-7 || Math.abs(lat - f.lat) > 1e-7) {
      changes.lon = lon;
      changes.lat = lat;
    }
    return { changes: changes, crs: crs };
  }
  function markErrors(problem) {
    document.querySelectorAll("#facility-form .field-error").forEach(function (n) { n.textContent = ""; });
    document.querySelectorAll("#facility-form .invalid").forEach(function (n) { n.classList.remove("invalid"); });
    (problem.errors || []).forEach(function (e) {
      var name = String(e.field || "").split(".").pop();
      var label = document.querySelector('#form-fields [data-field="' + name + '"]');
      if (label) {
        label.classList.add("invalid");
        label.querySelector(".field-error").textContent = e.reason;
      } else if (name === "lon" || name === "lat") {
        $("f-" + name).classList.add("invalid");
      }
    });
  }
  function save(event) {
    if (event) event.preventDefault();
    var edit = formChanges();
    if (!Object.keys(edit.changes).length) { toast(t("saved")); return; }
    patch(edit.changes, edit.crs, selected.etag);
  }
  function patch(changes, crs, etag) {
    $("form-error").textContent = "";
    return api("PATCH", "/facilities/" + encodeURIComponent(selected.facility.id) + "?crs=" + crs, {
      json: changes, contentType: "application/merge-patch+json", headers: { "If-Match": etag },
    }).then(function (r) {
      saved(r);
      toast(t("saved"));
    }).catch(function (error) {
      if (error.status === 412) { conflict(changes, crs); return; }
      if (error.problem) markErrors(error.problem);
      failed("form-error")(error);
    });
  }
  function saved(r) {
    selected.facility = r.body;
    selected.etag = r.etag;
    fillForm(r.body);
    selected.marker.setLatLng([r.body.lat, r.body.lon]);
    var f = byId[r.body.id];
    if (f) {
      f.properties = Object.assign(f.properties, r.body);
      f.geometry = { type: "Point", coordinates: [r.body.lon, r.body.lat] };
    }
  }
  function conflict(mine, crs) {
    api("GET", "/facilities/" + encodeURIComponent(selected.facility.id)).then(function (r) {
      var theirs = r.body;
      var table = clear($("conflict-table"));
      table.appendChild(el("thead", null, el("tr", null, el("th", { text: t("field") }),
        el("th", { text: t("yours") }), el("th", { text: t("theirs") }))));
      var body = el("tbody");
      var names = Object.keys(mine);
      Object.keys(theirs).forEach(function (k) {
        if (names.indexOf(k) < 0 && JSON.stringify(theirs[k]) !== JSON.stringify(selected.facility[k]) &&
            ["version", "updated_at"].indexOf(k) < 0) names.push(k);
      });
      names.forEach(function (k) {
        var my = k in mine ? mine[k] : selected.facility[k];
        body.appendChild(el("tr", { dataset: { field: k } }, el("td", { text: fieldLabel(k) }),
          el("td", { class: "mine", text: valueText(my) }), el("td", { class: "theirs", text: valueText(theirs[k]) })));
      });
      table.appendChild(body);
      show($("conflict"), true);
      $("keep-mine").onclick = function () {
        show($("conflict"), false);
        patch(mine, crs, r.etag);
      };
      $("take-theirs").onclick = function () { saved(r); show($("conflict"), false); };
    }).catch(failed("form-error"));
  }

  /* ---- history ------------------------------------------------------------------------- */
  function entryNode(e, withRevert, facilityId) {
    var changes = el("ul", { class: "diff" });
    Object.keys(e.changes || {}).forEach(function (f) {
      var pair = e.changes[f];
      changes.appendChild(el("li", null, el("b", { text: fieldLabel(f) + " " }),
        el("del", { text: valueText(pair[0]) }), " → ", el("ins", { text: valueText(pair[1]) })));
    });
    var li = el("li", { class: "entry", dataset: { seq: e.seq } },
      el("div", { class: "meta" }, el("time", { datetime: e.at, text: localTime(e.at) }),
        " · ", el("span", { class: "actor", text: e.actor }), " · ",
        el("span", { text: t("a_" + e.action) }),
        facilityId ? null : el("button", { type: "button", class: "link", text: e.facility_id,
          onclick: function () { showHistory(e.facility_id); } })),
      changes);
    if (withRevert && ["update", "patch", "replace"].indexOf(e.action) >= 0 && e.changes) {
      li.appendChild(el("button", { type: "button", class: "revert", text: t("revert"),
        onclick: function () { revert(facilityId, e.seq); } }));
    }
    return li;
  }
  function showHistory(id) {
    openTabIfNeeded("history");
    $("history-id").value = id;
    $("history-error").textContent = "";
    $("history-title").textContent = "";
    var list = clear($("history-list"));
    var path = "/facilities/" + encodeURIComponent(id);
    api("GET", path).then(function (facility) {
      return api("GET", path + "/audit").then(function (trail) {
        $("history-title").textContent = t("history_of", { name: facility.body.name, id: id });
        if (!trail.body.entries.length) list.appendChild(el("li", { text: t("no_entries") }));
        trail.body.entries.forEach(function (e) { list.appendChild(entryNode(e, true, id)); });
      });
    }).catch(failed("history-error"));
  }
  function revert(id, seq) {
    api("GET", "/facilities/" + encodeURIComponent(id)).then(function (r) {
      return api("POST", "/facilities/" + encodeURIComponent(id) + "/audit/" + seq + "/revert",
        { headers: { "If-Match": r.etag } });
    }).then(function () {
      toast(t("reverted"));
      facilities = [];
      showHistory(id);
      loadOrgChanges();
    }).catch(failed("history-error"));
  }
  function loadOrgChanges() {
    var list = clear($("org-list"));
    api("GET", "/audit?limit=50").then(function (r) {
      if (!r.body.entries.length) list.appendChild(el("li", { text: t("no_entries") }));
      r.body.entries.forEach(function (e) { list.appendChild(entryNode(e, false, null)); });
    }).catch(function (error) {
      // a key without read-all or organisations reads only the trails of single facilities
      list.appendChild(error.status === 403 ? el("li", { text: t("no_org_trail") })
        : el("li", { class: "error", text: error.message }));
    });
  }

  /* ---- export and print ---------------------------------------------------------------- */
  function exportAs(format) {
    $("export-error").textContent = "";
    api("GET", "/export?format=" + format).then(function (r) {
      download(r.body instanceof Blob ? r.body : new Blob([JSON.stringify(r.body)]),
        "facilities." + format);
    }).catch(failed("export-error"));
  }
  function loadDistricts() {
    var select = $("print-district");
    if (select.options.length) return;
    api("GET", "/collections/districts/items?limit=1000").then(function (r) {
      r.body.features.forEach(function (f) {
        select.appendChild(el("option", { value: f.id, text: f.properties.name || f.id }));
      });
    }).catch(failed("export-error"));
  }
  function printSheet(event) {
    event.preventDefault();
    var adcode = $("print-district").value;
    $("export-error").textContent = "";
    api("GET", "/coverage/sheet.pdf?adcode=" + encodeURIComponent(adcode)).then(function (r) {
      download(r.body, "coverage-" + adcode + ".pdf");
    }).catch(failed("export-error"));
  }
  function printAtlas() {
    $("export-error").textContent = "";
    api("GET", "/coverage/atlas.pdf").then(function (r) {
      download(r.body, "coverage-atlas.pdf");
    }).catch(failed("export-error"));
  }

  /* ---- keys ---------------------------------------------------------------------------- */
  function loadKeys() {
    var table = clear($("keys-table"));
    var scopes = clear($("k-scopes"));
    scopes.appendChild(el("legend", { text: t("scopes") }));
    (VOCAB.scopes || []).forEach(function (s) {
      scopes.appendChild(el("label", { class: "check" }, el("input", { type: "checkbox", value: s }), s));
    });
    api("GET", "/keys").then(function (r) {
      table.appendChild(el("thead", null, el("tr", null, el("th", { text: t("key_name") }),
        el("th", { text: t("scopes") }), el("th", { text: t("organizations") }),
        el("th", { text: t("key_status") }), el("th"))));
      var body = el("tbody");
      r.body.keys.forEach(function (k) {
        body.appendChild(el("tr", { dataset: { name: k.name } }, el("td", { text: k.name }),
          el("td", { text: k.scopes.join(", ") }), el("td", { text: k.organizations.join(", ") }),
          el("td", { text: t(k.status) }),
          el("td", null, k.status === "active" ? el("button", { type: "button", text: t("revoke"),
            onclick: function () { revokeKey(k.name); } }) : null)));
      });
      table.appendChild(body);
    }).catch(failed("key-error"));
  }
  function createKey(event) {
    event.preventDefault();
    $("key-error").textContent = "";
    var body = {
      name: $("k-name").value.trim(),
      scopes: Array.prototype.map.call(document.querySelectorAll("#k-scopes input:checked"),
        function (i) { return i.value; }),
      organizations: $("k-orgs").value.split(/[,，]/).map(function (s) { return s.trim(); }).filter(Boolean),
      member: $("k-member").checked,
      expires: $("k-expires").value || null,
    };
    api("POST", "/keys", { json: body }).then(function (r) {
      $("key-secret-text").textContent = r.body.key;
      show($("key-secret"), true);
      $("key-form").reset();
      loadKeys();
    }).catch(failed("key-error"));
  }
  function revokeKey(name) {
    api("POST", "/keys/" + encodeURIComponent(name) + "/revoke").then(loadKeys).catch(failed("key-error"));
  }

  /* ---- wiring -------------------------------------------------------------------------- */
  function options(select, values) {
    values.forEach(function (v) { select.appendChild(el("option", { value: v, text: v })); });
  }
  document.addEventListener("DOMContentLoaded", function () {
    options($("import-crs"), VOCAB.crs || []);
    options($("f-crs"), VOCAB.crs || []);
    options($("import-access"), VOCAB.access || []);
    translate();
    $("lang").addEventListener("click", function () {
      lang = lang === "zh" ? "en" : "zh";
      localStorage.setItem(LANG, lang);
      translate();
      if (session) $("who").textContent = t("signed_in", { name: session.name });
      if (imported && imported.result) renderDryRun(imported.result);
      if (selected) fillForm(selected.facility);
      var open = document.querySelector("#tabs button.on");
      if (session && open && open.dataset.tab !== "edit") openTab(open.dataset.tab);
      if (session && $("history-list").children.length) showHistory($("history-id").value.trim());
    });
    $("signin-form").addEventListener("submit", signIn);
    $("signout").addEventListener("click", function () { signOut(); });
    document.querySelectorAll("#tabs [data-tab]").forEach(function (b) {
      b.addEventListener("click", function () { openTab(b.dataset.tab); });
    });
    $("import-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var file = $("import-file").files[0];
      if (!file) return;
      imported = { file: file, result: null, fixes: {} };
      dryRun();
    });
    $("import-recheck").addEventListener("click", dryRun);
    $("import-rejects").addEventListener("click", function () {
      sendImport(importForm(true, "csv"), t("checking")).then(function (blob) {
        var stem = imported.file.name.replace(/\.[^.]+$/, "");
        download(blob, stem + "-rejects.csv");
      }).catch(failed("import-error"));
    });
    $("import-commit").addEventListener("click", commitImport);
    $("import-report").addEventListener("click", function () {
      download(new Blob([JSON.stringify(imported.final, null, 2)], { type: "application/json" }),
        imported.file.name.replace(/\.[^.]+$/, "") + "-report.json");
    });
    $("search").addEventListener("input", search);
    $("facility-form").addEventListener("submit", save);
    $("apply-coords").addEventListener("click", applyCoords);
    $("form-history").addEventListener("click", function () { showHistory(selected.facility.id); });
    $("photo-file").addEventListener("change", addPhoto);
    $("history-form").addEventListener("submit", function (event) {
      event.preventDefault();
      if ($("history-id").value.trim()) showHistory($("history-id").value.trim());
    });
    document.querySelectorAll("[data-export]").forEach(function (b) {
      b.addEventListener("click", function () { exportAs(b.dataset.export); });
    });
    $("print-form").addEventListener("submit", printSheet);
    $("print-atlas").addEventListener("click", printAtlas);
    $("key-form").addEventListener("submit", createKey);
    start();
  });
})();
