// deskbot web chat. Every text the server returns is put on the page with textContent,
// never innerHTML: a message like "<img onerror=...>" shows as those characters.
(function () {
  "use strict";

  var API = "/chat/api";
  var POLL_MS = 3000;
  var POLL_HIDDEN_MS = 15000;

  var STRINGS = {
    en: {
      status: "Online · we usually reply right away",
      welcome: "Welcome! How can we help?",
      welcome_hint: "Ask about products, sizes, prices, shipping, returns or your order.",
      typing: "typing…",
      label: "Your message",
      placeholder: "Type a message…",
      agent: "Support agent",
      not_sent: "Message not sent: ",
      offline: "Cannot reach the shop right now. Please try again in a moment.",
    },
    zh: {
      status: "在线 · 通常即时回复",
      welcome: "欢迎！请问有什么可以帮您？",
      welcome_hint: "可以咨询商品、尺码、价格、配送、退换货或您的订单。",
      typing: "正在输入…",
      label: "您的消息",
      placeholder: "输入消息…",
      agent: "客服人员",
      not_sent: "消息未发送：",
      offline: "暂时无法连接，请稍后再试。",
    },
  };

  var lang = (navigator.language || "en").toLowerCase().indexOf("zh") === 0 ? "zh" : "en";
  var t = STRINGS[lang];

  var messagesEl = document.getElementById("messages");
  var introEl = document.getElementById("intro");
  var typingEl = document.getElementById("typing");
  var quickEl = document.getElementById("quick-replies");
  var form = document.getElementById("composer");
  var input = document.getElementById("input");
  var sendButton = document.getElementById("send");
  var shopInitial = (document.getElementById("shop-name").textContent || "?").trim().charAt(0).toUpperCase();

  var seen = new Set(); // ids of messages already on the page (history, poll and send may overlap)
  // The highest message id shown: each poll sends it as ``after``, which acknowledges every
  // reply handed out up to it (until then the server hands a reply over again).
  var shownUpTo = 0;
  var SEND_RETRIES = 3;
  var pendingSends = 0;
  var queue = Promise.resolve();
  var lastAuthor = null;

  function localise() {
    document.querySelectorAll("[data-i18n]").forEach(function (el) {
      var key = el.getAttribute("data-i18n");
      if (t[key]) el.textContent = t[key];
    });
    document.querySelectorAll("[data-i18n-placeholder]").forEach(function (el) {
      var key = el.getAttribute("data-i18n-placeholder");
      if (t[key]) el.setAttribute("placeholder", t[key]);
    });
    if (lang === "zh") document.documentElement.lang = "zh-CN";
  }

  function newId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function api(method, path, body) {
    var options = {
      method: method,
      credentials: "same-origin",
      cache: "no-store",
      headers: { "X-Requested-With": "deskbot", Accept: "application/json" },
    };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(API + path, options).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (data) {
        if (!response.ok) {
          var error = new Error((data && data.error) || "HTTP " + response.status);
          error.status = response.status;
          throw error;
        }
        return data || {};
      });
    });
  }

  function scrollToEnd() {
    messagesEl.scrollTop = messagesEl.scrollHeight;
    // Again after the layout settles (quick replies or the typing line change the height).
    window.requestAnimationFrame(function () { messagesEl.scrollTop = messagesEl.scrollHeight; });
  }

  function addMessage(message) {
    if (message.id !== undefined && message.id !== null) {
      if (typeof message.id === "number" && message.id > shownUpTo) shownUpTo = message.id;
      if (seen.has(message.id)) return;
      seen.add(message.id);
    }
    if (!message.text) return;
    if (introEl) { introEl.remove(); introEl = null; }
    var author = message.author === "customer" || message.author === "agent" || message.author === "system"
      ? message.author : "bot";

    var row = document.createElement("div");
    row.className = "row " + author;
    if (author === lastAuthor && author !== "customer") row.classList.add("continued");

    if (author === "bot" || author === "agent") {
      var mini = document.createElement("div");
      mini.className = "mini-avatar";
      mini.setAttribute("aria-hidden", "true");
      mini.textContent = author === "agent" ? "★" : shopInitial;
      row.appendChild(mini);
    }
    var wrap = document.createElement("div");
    wrap.className = "bubble-wrap";
    if (author === "agent" && lastAuthor !== "agent") {
      var name = document.createElement("div");
      name.className = "author";
      name.textContent = t.agent;
      wrap.appendChild(name);
    }
    var bubble = document.createElement("div");
    bubble.className = "bubble";
    bubble.textContent = message.text;
    if (message.at) bubble.title = new Date(message.at).toLocaleString();
    wrap.appendChild(bubble);
    row.appendChild(wrap);
    messagesEl.appendChild(row);
    lastAuthor = author;
    scrollToEnd();
  }

  function showQuickReplies(buttons) {
    quickEl.replaceChildren();
    (buttons || []).forEach(function (button) {
      var chip = document.createElement("button");
      chip.type = "button";
      chip.className = "quick-reply";
      chip.textContent = button.title;
      chip.addEventListener("click", function () {
        enqueue({ payload: button.payload }, button.title);
      });
      quickEl.appendChild(chip);
    });
    scrollToEnd();
  }

  function showBotMessages(messages) {
    var lastButtons = null;
    (messages || []).forEach(function (message) {
      addMessage(message);
      if (message.author !== "customer") lastButtons = message.buttons || [];
    });
    if (lastButtons !== null) showQuickReplies(lastButtons);
  }

  function setTyping(on) {
    typingEl.hidden = !on;
    if (on) scrollToEnd();
  }

  function notice(text) {
    addMessage({ text: text, author: "system" });
    lastAuthor = null;
  }

  // Messages go out one at a time, in order, even when the visitor types faster than the bot.
  // ``shown`` is what the visitor sees as their message (a quick reply's title).
  function enqueue(body, shown) {
    addMessage({ text: shown || body.text || body.payload, author: "customer" });
    quickEl.replaceChildren();
    pendingSends += 1;
    setTyping(true);
    body.message_id = newId();
    body.language = navigator.language || undefined;
    // A lost answer or "still being processed" (503) is retried with the same message id:
    // the server processes it once and answers the same replies again.
    function attempt(left) {
      return api("POST", "/messages", body).catch(function (error) {
        if (left > 0 && (!error.status || error.status === 503)) {
          return new Promise(function (resolve) { window.setTimeout(resolve, 1000); }).then(function () {
            return attempt(left - 1);
          });
        }
        throw error;
      });
    }
    queue = queue.then(function () {
      return attempt(SEND_RETRIES).then(function (data) {
        showBotMessages(data.messages);
      }).catch(function (error) {
        notice(error.status ? t.not_sent + error.message : t.offline);
      }).then(function () {
        pendingSends -= 1;
        if (pendingSends === 0) setTyping(false);
      });
    });
  }

  function submit() {
    var text = input.value.trim();
    if (!text) return;
    input.value = "";
    autosize();
    enqueue({ text: text });
    input.focus();
  }

  function autosize() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight + 2, 140) + "px";
  }

  function poll() {
    var delay = document.hidden ? POLL_HIDDEN_MS : POLL_MS;
    api("GET", "/messages" + (shownUpTo ? "?after=" + shownUpTo : "")).then(function (data) {
      if (data.messages && data.messages.length) showBotMessages(data.messages);
    }).catch(function () { /* the next poll tries again */ }).then(function () {
      window.setTimeout(poll, delay);
    });
  }

  function restore() {
    return api("GET", "/history").then(function (data) {
      var messages = data.messages || [];
      messages.forEach(addMessage);
      // Quick replies of the last bot message stay usable after a reload.
      var last = messages[messages.length - 1];
      if (last && last.author !== "customer" && last.buttons && last.buttons.length) showQuickReplies(last.buttons);
    }).catch(function () { /* an empty chat is fine */ });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    submit();
  });
  input.addEventListener("keydown", function (event) {
    // Enter sends; Shift+Enter is a new line; Enter that confirms a Chinese IME candidate does nothing.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      submit();
    }
  });
  input.addEventListener("input", autosize);

  localise();
  restore().then(function () {
    window.setTimeout(poll, POLL_MS);
  });
  input.focus();
})();
