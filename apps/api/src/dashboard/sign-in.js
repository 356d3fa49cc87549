// The sign-in page: only the language switch; the form is a plain post (works without scripts).
import { initLanguage } from '/dashboard/i18n.js';

initLanguage();
