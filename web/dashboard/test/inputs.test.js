// What the alert, webhook and auto top-up forms send, and what they refuse before sending.

import assert from "node:assert/strict";
import { test } from "node:test";

import { alertInput, autoTopUpInput, endpointInput, endpointToggleInput } from "../inputs.js";

test("a Data Credits alert takes an amount, with separators and up to four decimals", () => {
  assert.deepEqual(alertInput("DATA_CREDITS", " 1,000.5 "), {
    meter: "DATA_CREDITS",
    threshold: "1000.5",
  });
  assert.deepEqual(alertInput("DATA_CREDITS", "0"), { meter: "DATA_CREDITS", threshold: "0" });
  for (const bad of ["", "lots", "-5", "1.23456", "1e3"]) {
    assert.throws(() => alertInput("DATA_CREDITS", bad), {
      message: "Enter a number of Data Credits, such as 500 or 12.5.",
    }, bad);
  }
});

test("an Actions alert takes a whole percent from 1 to 100, with or without %", () => {
  assert.deepEqual(alertInput("ACTIONS", "80"), { meter: "ACTIONS", threshold: "80" });
  assert.deepEqual(alertInput("ACTIONS", "80 %"), { meter: "ACTIONS", threshold: "80" });
  assert.deepEqual(alertInput("ACTIONS", "007"), { meter: "ACTIONS", threshold: "7" });
  assert.deepEqual(alertInput("ACTIONS", "100"), { meter: "ACTIONS", threshold: "100" });
  for (const bad of ["0", "101", "80.5", "", "-1", "half"]) {
    assert.throws(() => alertInput("ACTIONS", bad), {
      message: "Enter a whole percent of Actions capacity, from 1 to 100.",
    }, bad);
  }
  assert.throws(() => alertInput("HELD_CREDITS", "5"), { message: "Choose a meter." });
});

test("an endpoint takes a URL, the types chosen (none: every type) and a description", () => {
  const typed = { url: " https://example.com/hooks ", eventTypes: [], description: "  " };
  assert.deepEqual(endpointInput(typed), {
    url: "https://example.com/hooks",
    eventTypes: null,
    description: null,
  });
  assert.deepEqual(
    endpointInput({
      url: "http://10.0.0.5:8080/in", // the server decides whether http is allowed
      eventTypes: ["test.ping", "credits.depleted"],
      description: " Billing alerts ",
    }),
    {
      url: "http://10.0.0.5:8080/in",
      eventTypes: ["test.ping", "credits.depleted"],
      description: "Billing alerts",
    },
  );
});

test("an endpoint's URL is refused with a reason a person can act on", () => {
  const refused = {
    "": "Enter the endpoint's URL, such as https://example.com/hooks.",
    "example.com/hooks": "That is not a URL: it should look like https://example.com/hooks.",
    "ftp://example.com": "The URL must start with https://.",
    "https://exa mple.com": "The URL must not contain spaces.",
    "https://user:pw@example.com/":
      "The URL must not carry a user name or password; the signature is enough.",
    [`https://example.com/${"a".repeat(2030)}`]: "The URL is too long: at most 2,048 characters.",
  };
  for (const [url, message] of Object.entries(refused)) {
    assert.throws(() => endpointInput({ url }), { message }, url);
  }
  assert.throws(() => endpointInput({ url: "https://x.io", eventTypes: ["nope"] }), {
    message: "Unknown event type: nope.",
  });
  assert.throws(() => endpointInput({ url: "https://x.io", description: "d".repeat(501) }), {
    message: "The description is too long: at most 500 characters.",
  });
});

test("enabling or disabling sends the endpoint's URL, types and description back unchanged", () => {
  const endpoint = {
    id: "e1", url: "https://x.io/h", eventTypes: ["test.ping"], description: "d", enabled: true,
  };
  assert.deepEqual(endpointToggleInput(endpoint, false), {
    url: "https://x.io/h", eventTypes: ["test.ping"], description: "d", enabled: false,
  });
  const every = { ...endpoint, eventTypes: [], description: null };
  assert.deepEqual(endpointToggleInput(every, true), {
    url: "https://x.io/h", eventTypes: null, description: null, enabled: true,
  });
});

test("auto top-up takes a threshold, credits over 0, 1 to 100 times a cycle (default 3)", () => {
  assert.deepEqual(autoTopUpInput({ threshold: "500", credits: "1,000", maxPerCycle: "" }), {
    threshold: "500", credits: "1000", maxPerCycle: 3,
  });
  assert.deepEqual(autoTopUpInput({ threshold: "0", credits: "0.0001", maxPerCycle: " 100 " }), {
    threshold: "0", credits: "0.0001", maxPerCycle: 100,
  });
  assert.throws(() => autoTopUpInput({ threshold: "", credits: "5" }), {
    message: "Enter the threshold as a number of Data Credits, such as 500 or 12.5.",
  });
  for (const credits of ["0", "0.00", "", "-5", "many"]) {
    assert.throws(() => autoTopUpInput({ threshold: "5", credits }), {
      message: "Enter the Data Credits to buy each time: a number more than 0.",
    }, credits);
  }
  for (const maxPerCycle of ["0", "101", "2.5", "three"]) {
    assert.throws(() => autoTopUpInput({ threshold: "5", credits: "5", maxPerCycle }), {
      message: "Enter how many times a cycle it may buy: a whole number, 1 to 100.",
    }, maxPerCycle);
  }
});
