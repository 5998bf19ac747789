// dom.mjs - two DOM helpers the page's modules share.

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/** A new element with properties and (as textContent, never HTML) text. */
export const el = (tag, props = {}, text) => {
  const e = Object.assign(document.createElement(tag), props);
  if (text !== undefined) e.textContent = text;
  return e;
};
