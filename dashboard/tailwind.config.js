// Tailwind 3 (pure-JS CLI). Paths are relative to this file. The server-side card fragments
// (Jinja2, query_api/templates) are scanned too: a class used only there must still be compiled
// into dashboard/dist/app.css, so rebuild the dashboard after changing those templates.
/** @type {import('tailwindcss').Config} */
export default {
  content: {
    relative: true,
    files: ["./src/**/*.{html,js}", "../query_api/templates/**/*.html"],
  },
  theme: {
    extend: {},
  },
  plugins: [],
};
