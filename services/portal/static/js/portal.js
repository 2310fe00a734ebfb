// ticketflow portal: small enhancements on top of pages that work without JavaScript.
// Loaded from this origin only (the Content-Security-Policy allows no inline script).
(function () {
  "use strict";

  function typing(target) {
    if (!target) return false;
    var tag = target.tagName;
    if (tag === "INPUT" && (target.type === "checkbox" || target.type === "radio")) return false;  // no text
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable;
  }

  // A form's files are checked before it is sent (the portal checks them again): a choice that is too large
  // is answered next to its field at once, with nothing typed lost and no megabytes sent first. Registered
  // before the send-once guard below, which must not see a form that is not sent.
  function megabytes(bytes) { return Math.round(bytes / 1048576) + " MB"; }

  function fileProblem(input) {
    var most = Number(input.getAttribute("data-max-file-bytes"));
    var together = Number(input.getAttribute("data-max-total-bytes"));
    var sum = 0;
    for (var i = 0; i < input.files.length; i++) {
      var file = input.files[i];
      if (file.size === 0) return "\u201c" + file.name + "\u201d is empty. Choose another file.";
      if (file.size > most) {
        return "\u201c" + file.name + "\u201d is larger than " + megabytes(most) + ", the most a file may have.";
      }
      sum += file.size;
    }
    if (sum > together) {
      return "The files are " + megabytes(sum) + " together, more than the " + megabytes(together) +
        " that may be sent at once.";
    }
    return null;
  }

  function showFileProblem(input, text) {
    var id = input.id + "-error";
    var error = document.getElementById(id);
    if (!error) {
      error = document.createElement("p");
      error.className = "field-error";
      error.id = id;
      input.parentNode.insertBefore(error, input);
      input.setAttribute("aria-describedby", ((input.getAttribute("aria-describedby") || "") + " " + id).trim());
    }
    var hidden = document.createElement("span");
    hidden.className = "visually-hidden";
    hidden.textContent = "Error:";
    error.replaceChildren(hidden, document.createTextNode(" " + text));
    input.setAttribute("aria-invalid", "true");
    if (input.parentNode.classList) input.parentNode.classList.add("field--error");
    input.focus();
  }

  document.addEventListener("submit", function (event) {
    var inputs = event.target.querySelectorAll("input[type=file][data-max-file-bytes]");
    for (var i = 0; i < inputs.length; i++) {
      var problem = inputs[i].files ? fileProblem(inputs[i]) : null;
      if (problem) {
        event.preventDefault();
        event.stopImmediatePropagation();
        showFileProblem(inputs[i], problem);
        return;
      }
    }
  });

  // A form sends once: a double click does not post twice (the server is idempotent too).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-once")) return;
    if (form.getAttribute("data-sent") === "1") { event.preventDefault(); return; }
    form.setAttribute("data-sent", "1");
    var button = form.querySelector("button[type=submit]");
    if (button) { button.setAttribute("aria-disabled", "true"); button.classList.add("is-busy"); }
    Array.prototype.forEach.call(form.querySelectorAll("textarea[data-draft]"), function (box) {
      box.setAttribute("data-submitted", "");  // for Back to this page as it was (below)
    });
  });

  // A form with data-carry sends along, as carried_<name>, what is typed in the form it names ("Check a request"
  // beside "Open a request"), so that the page its error brings back keeps that too (files cannot come along:
  // carried_files says some were chosen, and the page asks for them again).
  document.addEventListener("submit", function (event) {
    var form = event.target, source = form.hasAttribute("data-carry") && document.getElementById(form.getAttribute("data-carry"));
    if (!source) return;
    Array.prototype.forEach.call(form.querySelectorAll("input[data-carried]"), function (old) { old.parentNode.removeChild(old); });
    var carry = function (name, value) {
      var copy = document.createElement("input");
      copy.type = "hidden"; copy.name = "carried_" + name; copy.value = value; copy.setAttribute("data-carried", "");
      form.appendChild(copy);
    };
    Array.prototype.forEach.call(source.elements, function (field) {
      if (!field.name || field.disabled || field.type === "hidden" || field.type === "submit") return;
      if (field.type === "file") { if (field.files && field.files.length) carry("files", "1"); return; }
      if (field.value) carry(field.name, field.value);
    });
  });

  // Put focus on an error summary, so a screen reader announces it and Tab goes through its links; or on what a
  // form that went through says ("Reply sent."): a screen reader reads it, and Tab goes on from there, not from
  // the top of the page (a status box already there when the page loads is not announced by itself).
  document.addEventListener("DOMContentLoaded", function () {
    var summary = document.querySelector("[data-autofocus]");
    if (summary) summary.focus();
  });

  // Keyboard: j/k next/previous ticket in a list, r reply, n note, / search. Never while typing, never with
  // Ctrl, Alt or Meta (the browser's own shortcuts), never on a repeat. j/k go on from the row last reached, also
  // after a detour (/ and Escape, a click elsewhere), by its address: the list may have refreshed meanwhile.
  // They can be turned off (a speech-input user's words would press them): the queue page's button, remembered
  // by this browser; then their hints go too.
  var KEYS_OFF = "ticketflow.keys-off";
  function keysOff() {
    try { return window.localStorage.getItem(KEYS_OFF) === "1"; } catch (e) { return false; }
  }
  function showKeys() {
    var off = keysOff();
    document.documentElement.classList.toggle("keys-off", off);
    Array.prototype.forEach.call(document.querySelectorAll("[data-keys-toggle]"), function (button) {
      button.hidden = false;
      button.textContent = off ? "Turn single-key shortcuts on" : "Turn single-key shortcuts off";
    });
    Array.prototype.forEach.call(document.querySelectorAll("[aria-keyshortcuts], [data-keys]"), function (field) {
      if (!field.hasAttribute("data-keys")) field.setAttribute("data-keys", field.getAttribute("aria-keyshortcuts"));
      if (off) field.removeAttribute("aria-keyshortcuts");
      else field.setAttribute("aria-keyshortcuts", field.getAttribute("data-keys"));
    });
  }
  document.addEventListener("DOMContentLoaded", showKeys);
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-keys-toggle]");
    if (!button) return;
    try { if (keysOff()) window.localStorage.removeItem(KEYS_OFF); else window.localStorage.setItem(KEYS_OFF, "1"); }
    catch (e) { return; }  // no storage (a private window that refuses it): nothing to remember it by
    showKeys();
  });
  var lastRow = null, lastRowAt = -1;
  document.addEventListener("focusin", function (event) {
    if (!event.target.matches || !event.target.matches("[data-row-link]")) return;
    lastRow = event.target.getAttribute("href");
    lastRowAt = Array.prototype.indexOf.call(document.querySelectorAll("[data-row-link]"), event.target);
  });
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat || typing(event.target) || keysOff()) return;
    var key = event.key;
    if (key === "j" || key === "k") {
      var links = Array.prototype.slice.call(document.querySelectorAll("[data-row-link]"));
      if (!links.length) return;
      var at = links.indexOf(document.activeElement);
      if (at < 0 && lastRow) {
        at = links.map(function (link) { return link.getAttribute("href"); }).indexOf(lastRow);
        // gone meanwhile (resolved, taken): the row that followed it is in its place now; j goes there, k above
        if (at < 0 && lastRowAt >= 0) at = Math.min(lastRowAt, links.length) - (key === "j" ? 1 : 0);
      }
      var next = at < 0 ? 0 : Math.min(Math.max(at + (key === "j" ? 1 : -1), 0), links.length - 1);
      links[next].focus();
      event.preventDefault();
    } else if (key === "r" || key === "n") {
      // r on a ticket nobody may reply to before claiming it: to "Claim this ticket", which says so
      var field = document.getElementById(key === "r" ? "reply-body" : "note-body") ||
        (key === "r" ? document.querySelector("[data-claim]") : null);
      if (field) { field.focus(); event.preventDefault(); }
    } else if (key === "/") {
      // The search page's own box first, else the one in the console's header.
      var box = document.querySelector("main [data-search-box]") || document.querySelector("[data-search-box]");
      if (box) { box.focus(); box.select(); event.preventDefault(); }
    }
  });

  // Times are written in UTC (the server knows no reader's time zone). A browser in another zone shows each time of
  // the page in its own, saying which ("4 Dec 2026, 09:39 CET"), the UTC time on hover; a date alone stays.
  var zone = window.Intl && Intl.DateTimeFormat().resolvedOptions().timeZone;
  var localFormat = zone && !/^(Etc\/)?(UTC|GMT|Universal|Zulu|UCT)$/.test(zone) ? new Intl.DateTimeFormat("en-GB", {
    day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    timeZoneName: "short" }) : null;
  function localTimes(root) {
    if (!localFormat || !root || !root.querySelectorAll) return;
    Array.prototype.forEach.call(root.querySelectorAll("time[datetime]"), function (time) {
      var written = time.textContent.trim(), at = new Date(time.getAttribute("datetime"));
      if (!/ UTC$/.test(written) || isNaN(at.getTime())) return;  // a date alone, or said already
      time.title = written;
      time.textContent = localFormat.format(at);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { localTimes(document); });
  document.addEventListener("htmx:load", function (event) { localTimes(event.detail.elt); });

  // Ctrl+Enter (Cmd+Enter on a Mac) in the reply or the note box sends it, as its button does (the form's checks
  // and its sending once included).
  document.addEventListener("keydown", function (event) {
    var box = event.target;
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey) || event.repeat) return;
    if (!box.id || (box.id !== "reply-body" && box.id !== "note-body") || !box.form) return;
    event.preventDefault();
    var send = box.form.querySelector("button[type=submit]:not([formaction])");  // not "Insert" (a saved reply)
    if (box.form.requestSubmit) box.form.requestSubmit(send || undefined); else if (send) send.click();
  });

  // Escape leaves a search box, the reply box or the note box (the page's keys work again); what was typed stays.
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    var leaves = target.hasAttribute && (target.hasAttribute("data-search-box") ||
      target.id === "reply-body" || target.id === "note-body");
    if (event.key !== "Escape" || !leaves) return;
    event.preventDefault();  // a search field's own Escape would empty it
    event.target.blur();
    var main = document.getElementById("main");
    if (main) main.focus({ preventScroll: true });
  });

  // Text goes in after the selection (never over it: what was selected stays), as a paragraph of its own, and as
  // typing does, so that the browser's Undo takes it out again. A box never touched takes it at its end.
  function insertAt(box, text) {
    var at = box.hasAttribute("data-touched") ? box.selectionEnd : box.value.length;
    var before = box.value.slice(0, at), after = box.value.slice(at);
    if (before && !/\n\n$/.test(before)) text = (/\n$/.test(before) ? "\n" : "\n\n") + text;
    if (after && !/^\n/.test(after)) text += "\n\n";
    box.focus();
    box.setSelectionRange(at, at);
    if (!document.execCommand || !document.execCommand("insertText", false, text)) {
      box.setRangeText(text, at, at, "end");
      box.dispatchEvent(new Event("input", { bubbles: true }));
    }
  }
  document.addEventListener("focusin", function (event) {
    if (event.target.matches && event.target.matches("textarea[data-draft]")) event.target.setAttribute("data-touched", "");
  });

  // A confirmation that would leave typed words unsent (a requester's close, beside the message box) says so as a
  // warning while there are words in that box (data-unsent-of: its id), and as a plain sentence otherwise.
  function unsentWarnings() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-unsent-of]"), function (said) {
      var box = document.getElementById(said.getAttribute("data-unsent-of"));
      var typed = !!(box && box.value.trim());
      said.classList.toggle("notice", typed);
      said.classList.toggle("notice--warning", typed);
    });
  }
  document.addEventListener("input", unsentWarnings);
  document.addEventListener("toggle", unsentWarnings, true);  // a <details> opened: toggle does not bubble
  document.addEventListener("DOMContentLoaded", unsentWarnings);
  document.addEventListener("htmx:load", unsentWarnings);

  // Drafts: what is typed in a box with data-draft is kept in this tab (sessionStorage) until it is sent, so that
  // another button of the page (Set priority, a rating) or a reload does not throw it away. The key names the
  // person (an agent's account, or the requester) and the box. A page that confirms a send names the drafts it
  // ends (data-draft-sent) and then leaves the address without its notice, so that a reload ends no newer draft;
  // signing out and "Forget my requests" end them all (data-drafts-end).
  function storage() { try { return window.sessionStorage; } catch (e) { return null; } }
  function keep(box) {
    var kept = storage(), key = box.getAttribute("data-draft");
    if (!kept || !key) return;
    try {
      if (box.value.trim()) kept.setItem(key, box.value); else kept.removeItem(key);
    } catch (e) { /* full or refused: the draft is not kept */ }
  }
  document.addEventListener("input", function (event) {
    if (event.target.hasAttribute && event.target.hasAttribute("data-draft")) keep(event.target);
  });
  // A notice ("Ticket resolved.", "Reply sent.") is said once: the address loses it, so that a reload, or the
  // page opened again from the history, shows the ticket as it is then without a stale word above it (and ends
  // no newer draft: see below). The address's other parts (a queue's view and filters) stay.
  document.addEventListener("DOMContentLoaded", function () {
    if (!window.history.replaceState || !/[?&]notice=/.test(window.location.search)) return;
    var query = window.location.search.slice(1).split("&").filter(function (part) {
      return part && part.split("=")[0] !== "notice";
    }).join("&");
    window.history.replaceState(null, "", window.location.pathname + (query ? "?" + query : "") + window.location.hash);
  });
  document.addEventListener("DOMContentLoaded", function () {
    var kept = storage();
    if (!kept) return;
    if (document.querySelector("[data-drafts-end]")) {
      for (var i = kept.length - 1; i >= 0; i--) {
        if (kept.key(i).indexOf("draft:") === 0) kept.removeItem(kept.key(i));
      }
    }
    var sent = document.querySelectorAll("[data-draft-sent]");
    Array.prototype.forEach.call(sent, function (done) {
      done.getAttribute("data-draft-sent").split(" ").forEach(function (key) { kept.removeItem(key); });
    });
    var restored = null;
    Array.prototype.forEach.call(document.querySelectorAll("textarea[data-draft]"), function (box) {
      // what the browser filled in again (Back to a page whose form was sent) is not a draft: only what this tab
      // kept unsent is; the page's own text (a form sent back with an error) is
      if (box.value !== box.defaultValue && document.activeElement !== box) box.value = box.defaultValue;
      if (box.value.trim()) { keep(box); return; }  // the page's own (a form sent back): the draft now
      var draft = kept.getItem(box.getAttribute("data-draft"));
      if (!draft) return;
      box.value = draft;
      restored = restored || box;
      var said = document.createElement("p");
      said.className = "hint";
      said.id = box.id + "-draft";
      said.textContent = "Your unsent draft is back.";
      box.insertAdjacentElement("afterend", said);
      var described = box.getAttribute("aria-describedby");
      box.setAttribute("aria-describedby", (described ? described + " " : "") + said.id);
    });
    // a page opened at its top (after signing in again, a reload) shows the draft it brought back, unless it
    // leads to an anchor or an alert takes the eye first
    if (restored && !window.location.hash && !document.querySelector("[data-autofocus]") && !window.scrollY) {
      restored.scrollIntoView({ block: "center" });
    }
  });

  // Back to a page kept whole by the browser (its back-forward cache), as it was when its form was sent: the
  // form may be sent again, and a box whose words went shows the tab's unsent draft instead (none once they were
  // sent: the page that said so ended it), so that Send does not post them twice. Boxes not sent keep their words.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    var kept = storage();
    Array.prototype.forEach.call(document.querySelectorAll("textarea[data-submitted]"), function (box) {
      box.removeAttribute("data-submitted");
      var draft = kept ? kept.getItem(box.getAttribute("data-draft")) : null;
      box.value = draft || box.defaultValue;
    });
    Array.prototype.forEach.call(document.querySelectorAll("form[data-once][data-sent]"), function (form) {
      form.removeAttribute("data-sent");
      var button = form.querySelector("button[type=submit]");
      if (button) { button.removeAttribute("aria-disabled"); button.classList.remove("is-busy"); }
    });
  });

  // The reports' dates: a day typed or picked chooses "From one day to another" (else the period chosen, the last
  // 30 days say, would be shown and the day left unused).
  document.addEventListener("change", function (event) {
    var field = event.target;
    if (!field || (field.id !== "from" && field.id !== "to") || !field.value) return;
    var dates = document.getElementById("period-dates");
    if (dates) dates.checked = true;
  });

  // "Use in reply" beside a similar ticket's resolution: what was done then goes into the reply box as a saved
  // reply does (after the selection, Undo takes it out). Shown only with JavaScript: without it, it would do nothing.
  document.addEventListener("DOMContentLoaded", function () {
    if (!document.getElementById("reply-body")) return;
    Array.prototype.forEach.call(document.querySelectorAll("[data-use-resolution]"), function (button) {
      button.hidden = false;
    });
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-use-resolution]") : null;
    var box = document.getElementById("reply-body");
    if (!button || !box) return;
    event.preventDefault();
    insertAt(box, button.getAttribute("data-use-resolution"));
  });

  // "Insert" a saved reply: its text (the ticket's details filled in) goes into the reply box after the selection
  // (insertAt), and the box gets the focus to change it. Without JavaScript, or should the text not come, the
  // button sends the form to the page that puts it after what was typed, on the server.
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-insert-reply]") : null;
    if (!button || !window.fetch) return;
    var box = document.getElementById(button.getAttribute("data-insert-reply"));
    var picker = document.getElementById("reply-with");
    if (!box || !picker) return;
    event.preventDefault();
    var said = document.getElementById("reply-with-error");
    if (!picker.value) {  // said next to the list (without JavaScript, the page again says it at its top)
      if (!said) {
        said = document.createElement("p");
        said.id = "reply-with-error";
        said.className = "field-error";
        said.setAttribute("role", "alert");
        said.textContent = "Choose a saved reply first, then Insert.";
        (picker.closest(".saved-replies") || picker).insertAdjacentElement("afterend", said);
        picker.setAttribute("aria-describedby", said.id);
      }
      picker.focus();
      return;
    }
    if (said) { said.remove(); picker.removeAttribute("aria-describedby"); }
    var url = button.getAttribute("data-saved-reply-url").replace(/ID$/, encodeURIComponent(picker.value));
    fetch(url, { credentials: "same-origin", headers: { Accept: "text/plain" } }).then(function (answer) {
      if (!answer.ok) throw new Error(String(answer.status));
      return answer.text();
    }).then(function (text) {
      insertAt(box, text);
      picker.value = "";
    }).catch(function () {
      button.form.action = button.getAttribute("formaction");
      button.form.submit();  // the server's way: the page again, the box holding what was typed and the reply
    });
  });

  // After "Forget my requests on this device", a page reached with Back or Forward in that tab shows no one's
  // answers: the browser would fill its forms in again with what the previous person typed.
  var FORGOTTEN = "ticketflow-forgotten";
  function rememberForgotten() {
    try { sessionStorage.setItem(FORGOTTEN, "1"); } catch (e) { /* storage off: nothing to remember it by */ }
  }
  document.addEventListener("DOMContentLoaded", function () {
    if (document.querySelector("[data-forgotten]")) rememberForgotten();
  });
  // and as the button sends it: Back pressed the moment the next page shows could leave before its script runs
  document.addEventListener("submit", function (event) {
    if (event.target.matches && event.target.matches("form[data-forget]")) rememberForgotten();
  });
  function reachedWithBack(event) {  // Back or Forward: from the browser's cache, or loaded again
    var entry = performance.getEntriesByType ? performance.getEntriesByType("navigation")[0] : null;
    return event.persisted || !!(entry && entry.type === "back_forward");
  }
  window.addEventListener("pageshow", function (event) {
    if (!reachedWithBack(event)) return;
    try { if (sessionStorage.getItem(FORGOTTEN) !== "1") return; } catch (e) { return; }
    Array.prototype.forEach.call(document.forms, function (form) { form.reset(); });
  });

  // A requester's page that may no longer read its request (the session ended, the emailed link was followed
  // elsewhere) stops updating (htmx stops at 286): it says so, before anything typed is sent into a refusal.
  document.addEventListener("htmx:afterRequest", function (event) {
    var line = document.getElementById("request-update");
    if (!line || event.detail.elt.id !== "request-poll" || event.detail.xhr.status !== 286) return;
    line.textContent = "This page no longer updates: this device may not open the request any more. " +
      "Copy anything you are writing, then open the request from the link in its email.";
  });

  // The queue's bulk form: the list stops refreshing while a row is ticked (its rows would move under the
  // pointer, and a tick could land on the wrong one); "tick every ticket" (hidden without JavaScript, where each
  // row's box is ticked alone) ticks the list's rows; choosing a value beside an action chooses that action.
  function tickBoxes() { return document.querySelectorAll("input[name=ticket_ids]"); }
  function queueHeld(target) {
    return target && target.id === "queue" && document.querySelector("input[name=ticket_ids]:checked");
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (queueHeld(event.detail.target)) event.preventDefault();
  });
  document.addEventListener("htmx:beforeSwap", function (event) {  // a refresh that left before the first tick
    if (queueHeld(event.detail.target)) event.detail.shouldSwap = false;
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target.id === "queue") showTickAll();
  });
  function showTickAll() {
    var boxes = tickBoxes();
    var count = Array.prototype.filter.call(boxes, function (box) { return box.checked; }).length;
    var said = document.querySelector("[data-bulk-count]");
    if (said) said.textContent = count ? "(" + count + " ticked)" : "";
    var all = document.querySelector("[data-bulk-all]");
    if (!all) return;
    all.hidden = false;
    all.checked = boxes.length > 0 && count === boxes.length;
  }
  function openBulk(box) {  // ticking a row opens the form that acts on it, above the list
    var form = document.querySelector("details[data-bulk]");
    if (!form || form.open) return;
    var before = box.getBoundingClientRect().top;
    form.open = true;
    // the rows moved down by the form's height: the page follows, so the row ticked stays under the pointer
    var moved = box.getBoundingClientRect().top - before;
    if (!moved) return;
    var root = document.documentElement;
    var short = window.scrollY + moved - (root.scrollHeight - window.innerHeight);
    if (short > 0) {  // a short list ends too soon for the page to follow that far: room below it, then
      var body = document.body;
      body.style.paddingBottom = (parseFloat(getComputedStyle(body).paddingBottom) || 0) + short + "px";
      form.addEventListener("toggle", function given() {  // folded again: the room goes
        if (form.open) return;
        body.style.paddingBottom = "";
        form.removeEventListener("toggle", given);
      });
    }
    window.scrollBy(0, moved);
  }
  document.addEventListener("DOMContentLoaded", showTickAll);
  // Back to a queue (after Apply, or from a ticket): the browser would tick again the boxes at the same places,
  // on rows that may be other tickets now, and keep the chosen action and words. Nothing is ticked or chosen.
  window.addEventListener("pageshow", function (event) {
    var form = document.getElementById("bulk");
    if (!form || !reachedWithBack(event)) return;
    form.reset();  // and what the page came with (a bulk action's refused tickets, its choice and words): cleared
    Array.prototype.forEach.call(tickBoxes(), function (box) { box.checked = false; });
    Array.prototype.forEach.call(form.querySelectorAll("input[name=action]"), function (r) { r.checked = false; });
    var words = form.querySelector("textarea[name=resolution]");
    if (words) words.value = "";
    showTickAll();
  });
  function chooseAction(field) {
    var radio = field.form && field.form.querySelector("input[name=action][value=" + field.dataset.choose + "]");
    if (radio) radio.checked = true;
  }
  document.addEventListener("input", function (event) {
    if (event.target.dataset && event.target.dataset.choose) chooseAction(event.target);
  });
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (box.dataset && box.dataset.choose) {
      chooseAction(box);
    } else if (box.matches && box.matches("[data-bulk-all]")) {
      Array.prototype.forEach.call(tickBoxes(), function (one) { one.checked = box.checked; });
      showTickAll();
      if (box.checked) openBulk(box);
    } else if (box.name === "ticket_ids") {
      showTickAll();
      if (box.checked) openBulk(box);
    }
  });

  // A ticket's page that updates itself keeps what is being read where it is on the screen: a notice put in above
  // the conversation ("... wrote a new message") would push it down. The first entry in view is found again by
  // its id after the swap, and the page moved by what it moved. A page read at the notices themselves is left
  // alone: they are what changed. Nothing is done for an answer that changes nothing (204).
  document.addEventListener("htmx:beforeSwap", function (event) {
    var notices = document.getElementById("live-notices");
    if (event.detail.elt.id !== "live-poll" || !event.detail.shouldSwap) return;
    if (!notices || notices.getBoundingClientRect().bottom >= 0) return;
    var entries = document.querySelectorAll(".conversation [data-entry]"), reading = null;
    for (var i = 0; i < entries.length && !reading; i++) {
      var box = entries[i].getBoundingClientRect();
      if (box.bottom > 0) reading = { id: entries[i].getAttribute("data-entry"), top: box.top };
    }
    if (!reading || !reading.id) return;
    // the poller swaps itself out (its answer's parts go out of band): after the swap, not on its events
    setTimeout(function () {
      var same = document.querySelector('.conversation [data-entry="' + CSS.escape(reading.id) + '"]');
      var moved = same ? same.getBoundingClientRect().top - reading.top : 0;
      if (moved) window.scrollBy(0, moved);
    }, 0);
  });

  // A list that refreshes by itself (data-shown: the digest of the list it shows) sends that digest with each
  // refresh: the same list again is 204, which htmx does not swap, so focus, a selection and a screen reader's place
  // stay; a new one comes with its own digest (X-Shown).
  document.addEventListener("htmx:configRequest", function (event) {
    var elt = event.detail.elt;
    if (elt.hasAttribute && elt.hasAttribute("data-shown")) event.detail.parameters.shown = elt.getAttribute("data-shown");
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var elt = event.detail.elt, xhr = event.detail.xhr;
    if (!elt.hasAttribute || !elt.hasAttribute("data-shown") || !xhr || xhr.status !== 200) return;
    elt.setAttribute("data-shown", xhr.getResponseHeader("X-Shown") || "");
  });

  // A part of a page that refreshes by itself (a queue's list, a conversation swapped in out of band) keeps the
  // keyboard focus where it was: when the swap took the focused element away, the same is found again by its id,
  // or a link by its address (a file's link has no id), and focused (an accessibility tester's finds).
  var focused = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    var active = document.activeElement;
    focused = event.detail.shouldSwap && active && active !== document.body
      ? { element: active, id: active.id || null, href: active.tagName === "A" ? active.getAttribute("href") : null }
      : null;
  });
  document.addEventListener("htmx:afterSettle", function () {
    var was = focused, active = document.activeElement;
    focused = null;
    if (!was || (active && active !== document.body && document.contains(active))) return;  // focus stayed somewhere
    var again = was.id ? document.getElementById(was.id) : null;
    if (!again && was.href) again = document.querySelector('a[href="' + CSS.escape(was.href) + '"]');
    if (again) again.focus({ preventScroll: true });
  });
})();
