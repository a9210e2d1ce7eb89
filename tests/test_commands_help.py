"""Every command of the ``redes`` console script prints its help (lazy translated strings included)."""

from django.core.management import get_commands, load_command_class
from django.test import SimpleTestCase
from django.utils import translation

OURS = {"demo", "serve", "municipality", "territory", "registry", "needs", "messaging", "user", "token"}


class CommandHelpTests(SimpleTestCase):
    def test_every_redes_command_prints_its_help_in_both_languages(self):
        commands = get_commands()
        self.assertTrue(set(commands) >= OURS, OURS - set(commands))
        for name in sorted(OURS):
            for language in ("es-mx", "en"):
                with self.subTest(command=name, language=language), translation.override(language):
                    parser = load_command_class(commands[name], name).create_parser("redes", name)
                    text = parser.format_help()
                    self.assertIn(f"redes {name}", text)
