#!/usr/bin/python3
"""Render OWL_CHAT_TEMPLATE_MPLUG_OWL2 (src/text/template.h) with jinja2 and
compare with the texts owl_chat_render produces (tests/c/test_template.c).
Usage: /usr/bin/python3 tests/tokenizer/check_template.py  (exit 1 on mismatch)"""
import os
import re
import sys

import jinja2

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')
src = open(os.path.join(root, 'src', 'text', 'template.h'), encoding='utf-8').read()
m = re.search(r'#define OWL_CHAT_TEMPLATE_MPLUG_OWL2((?:[^\n]*\\\n)*[^\n]*)', src)
lits = re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1))
template = ''.join(bytes(l, 'utf-8').decode('unicode_escape') for l in lits)

env = jinja2.Environment()
tpl = env.from_string(template)
img = {'type': 'image'}
cases = [
    ([{'role': 'user', 'content': '<|image|>Describe the image.'}], True,
     'USER: <|image|>Describe the image. ASSISTANT:'),
    ([{'role': 'user', 'content': [img, {'type': 'text', 'text': 'Describe the image.'}]}], True,
     'USER: <|image|>Describe the image. ASSISTANT:'),
    ([{'role': 'system', 'content': 'ignored'},
      {'role': 'user', 'content': 'What is the capital of France?'}], True,
     'USER: What is the capital of France? ASSISTANT:'),
    ([{'role': 'user', 'content': [{'type': 'text', 'text': 'Describe the image.'}, img]},
      {'role': 'assistant', 'content': 'It is a test pattern.'},
      {'role': 'user', 'content': 'Which shapes are there?'}], True,
     'USER: <|image|>Describe the image. ASSISTANT: It is a test pattern.</s>USER: Which shapes are there? ASSISTANT:'),
    ([{'role': 'user', 'content': [img, img, {'type': 'text', 'text': 'Compare.'}]},
      {'role': 'assistant', 'content': 'Same.'},
      {'role': 'user', 'content': [img, {'type': 'text', 'text': 'And this?'}]}], True,
     'USER: <|image|><|image|>Compare. ASSISTANT: Same.</s>USER: <|image|>And this? ASSISTANT:'),
    ([{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello.'}], False,
     'USER: Hi ASSISTANT: Hello.</s>'),
]
bad = 0
for msgs, gen, want in cases:
    got = tpl.render(messages=msgs, add_generation_prompt=gen)
    if got != want:
        bad += 1
        print('check_template: MISMATCH\n  got  %r\n  want %r' % (got, want))
print('check_template: %d cases, %d mismatches' % (len(cases), bad))
sys.exit(1 if bad else 0)
