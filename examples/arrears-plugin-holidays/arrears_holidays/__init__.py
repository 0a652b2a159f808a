"""An example Arrears plugin: a public-holiday contact rule and a ``file`` channel.

Arrears loads ``arrears_holidays.plugin`` through the ``arrears`` entry point; the rule
lives in ``arrears_holidays.rule`` and the channel in ``arrears_holidays.channel``.
"""
