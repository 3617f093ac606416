#!/usr/bin/perl
# Named presets (issue 12): vconv_preset parsing and nginx -t messages,
# inheritance (a level's preset of the same name replaces the inherited
# one), preset=NAME with and without overrides, vconv_presets_only, and
# the presets in GET /api/presets with their labels.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use VconvNginx;

my $dir = tempdir('vconv-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $mp4 = VconvNginx::make_media($dir, 'mp4');

# --- nginx -t: every bad preset is refused at its line, naming it --------

my @bad = (
    ['vconv_preset clip width=abc;',
     qr/vconv_preset "clip": option 'width': 'abc' is not an integer/],
    ['vconv_preset clip colour=blue;',
     qr/vconv_preset "clip": unknown option 'colour'/],
    ['vconv_preset clip format=mp3 height=120;',
     qr/vconv_preset "clip": option 'height' does not apply to audio/],
    ['vconv_preset clip format=mp4 target_size=12x;',
     qr/vconv_preset "clip": option 'target_size': '12x' is not a size/],
    ['vconv_preset clip format=gif target_size=1m;',
     qr/vconv_preset "clip": option 'target_size' does not apply/],
    ['vconv_preset clip format=mp4 preset=other;',
     qr/vconv_preset "clip": 'preset' belongs to a request/],
    ['vconv_preset clip format=mp4 height;',
     qr/vconv_preset "clip": "height" is not option=value/],
    ['vconv_preset clip label="no end;',
     qr/vconv_preset "clip": a bad label/],
    ['vconv_preset Clip! format=mp4;',
     qr/vconv_preset: the name "Clip!" may hold only/],
    ["vconv_preset clip format=mp4;\n    vconv_preset clip format=webm;",
     qr/vconv_preset "clip" is duplicate/],
    ['vconv_preset clip;', qr/invalid number of arguments/],
    ['vconv_presets_only maybe;', qr/invalid value "maybe"/],
);
for my $b (@bad) {
    my ($d, $msg) = @$b;
    my $ng = VconvNginx->new(http => "    $d\n");
    my ($ok, $out) = $ng->test_conf;
    ok(!$ok, "nginx -t refuses '" . ($d =~ s/\n\s*/ /r) . "'");
    my ($last) = (split /\n\s*/, $d)[-1];
    my $line = conf_line($ng, $last);
    like($out, qr/\[emerg\] $msg.* in \S*nginx\.conf:$line\b/,
         "... with a message naming preset and option, at line $line")
        or diag($out);
}

# --- a server with presets at every level --------------------------------

my $ng = VconvNginx->new(
    http => <<'EOF',
    vconv_preset small format=mp4 height=120 label="Small MP4 (120 lines)";
    vconv_preset voice format=mp3 audio_bitrate=64k "label=Voice, MP3 64k";
    vconv_preset fit format=mp4 target_size=200k label="Under 200 KB";
EOF
    server => <<'EOF',
        vconv_preset small format=webm height=96 label="Small WebM";
        vconv_preset poster format=jpg width=160;

        location = /strict/jobs {
            vconv_upload /api/jobs/;
            vconv_presets_only on;
        }
        location = /strict/presets {
            vconv_presets;
            vconv_presets_only on;
        }
        location = /more/jobs {
            vconv_upload /api/jobs/;
            vconv_preset tiny format=mp4 width=64 audio=0;
        }
        location = /webm-only/presets {
            vconv_presets;
            vconv_formats webm;
        }
EOF
)->start;

# --- /api/presets lists them, labels and options as configured ----------

{
    my $r = $ng->get('/api/presets');
    is($r->{status}, 200, 'GET /api/presets 200');
    my $p = $r->{json}{presets};
    is(ref $p, 'ARRAY', 'a "presets" list') or diag($r->{body});
    is(join(',', map { $_->{name} } @$p), 'small,voice,fit,poster',
       'inherited order; the server\'s "small" replaces the http one; '
       . 'its new "poster" comes after');
    my %by = map { $_->{name} => $_ } @$p;
    is($by{small}{label}, 'Small WebM', 'replaced preset: its own label');
    is($by{small}{format}, 'webm', 'replaced preset: its own format');
    is_deeply($by{small}{options}, { format => 'webm', height => '96' },
              'replaced preset: its own options only');
    is($by{voice}{label}, 'Voice, MP3 64k', 'whole-token quoted label');
    is($by{fit}{label}, 'Under 200 KB', 'label="..." with spaces joined');
    is($by{fit}{options}{target_size}, '200k', 'option as written');
    is($by{poster}{label}, 'poster', 'no label: the name');
    ok($r->{json}{presets_only} eq '0' || !$r->{json}{presets_only},
       'presets_only false here');
    ok(ref $r->{json}{formats} eq 'ARRAY' && @{ $r->{json}{formats} },
       'the formats are still there');
    ok((grep { $_ eq 'target_size' }
        @{ (grep { $_->{name} eq 'mp4' } @{ $r->{json}{formats} })[0]{options}
           || [] }), 'mp4 offers target_size');

    $r = $ng->get('/strict/presets');
    ok($r->{json}{presets_only}, 'presets_only true where it is on');

    $r = $ng->get('/webm-only/presets');
    is(join(',', map { $_->{name} } @{ $r->{json}{presets} }), 'small',
       'a location allowing webm only lists only the webm preset');
}

# --- preset=NAME applies its options ------------------------------------

sub convert {
    my ($path, $name, %o) = @_;
    my $r = $ng->post_file($path, $mp4, name => 'clip.mp4', %o);
    is($r->{status}, 202, "$name: 202") or diag($r->{body});
    return undef unless $r->{status} == 202;
    my $job = $ng->wait_job($r->{json}{id}, 60);
    is($job->{status}, 'done', "$name: done")
        or diag(explain($job));
    return undef unless $job->{status} eq 'done';
    my $out = "$dir/" . $r->{json}{id};
    $ng->download($job->{id}, $out);
    return VconvNginx::probe($out);
}

{
    my $p = convert('/api/jobs?preset=small', 'preset=small');
    is($p->{video}{codec_name}, 'vp9', 'preset small: VP9 (webm)');
    is($p->{video}{height}, 96, 'preset small: 96 lines');
    is($p->{format}{format_name}, 'matroska,webm', 'preset small: webm');

    $p = convert('/api/jobs?preset=small&height=64', 'override height');
    is($p->{video}{height}, 64, 'a request option overrides the preset');
    is($p->{video}{codec_name}, 'vp9', '... the rest of the preset stays');

    $p = convert('/api/jobs?preset=voice', 'preset=voice');
    ok(!$p->{video}, 'preset voice: no video');
    is($p->{audio}{codec_name}, 'mp3', 'preset voice: mp3');
    my $br = $p->{format}{bit_rate} // 0;
    cmp_ok(abs($br - 64000), '<', 6000, "preset voice: about 64 kbit/s ($br)");

    $p = convert('/api/jobs?preset=small&format=mp4', 'override format');
    is($p->{video}{codec_name}, 'h264', 'format=mp4 over a webm preset');
    is($p->{video}{height}, 96, '... its height stays');

    $p = convert('/more/jobs?preset=tiny', 'location preset');
    is($p->{video}{width}, 64, 'a location\'s own preset');
    ok(!$p->{audio}, '... audio=0');

    $p = convert('/more/jobs?preset=voice', 'inherited into a location');
    is($p->{audio}{codec_name}, 'mp3', 'the location inherits the others');

    # multipart: the preset as a form field, after the file
    my $r = $ng->post_multipart('/api/jobs', file => $mp4,
                                fields_after => [preset => 'poster']);
    is($r->{status}, 202, 'multipart preset=poster 202') or diag($r->{body});
    my $job = $ng->wait_job($r->{json}{id}, 60);
    is($job->{output}{format}, 'jpg', 'multipart preset: jpg');
    $ng->download($job->{id}, "$dir/poster.jpg");
    $p = VconvNginx::probe("$dir/poster.jpg");
    is($p->{video}{width}, 160, 'multipart preset: 160 wide');
}

# --- errors --------------------------------------------------------------

{
    my $r = $ng->post_file('/api/jobs?preset=nope', $mp4);
    VconvNginx::is_api_error($r, 400, 'unknown_preset', 'unknown preset 400');
    like($r->{json}{error}{message}, qr/'nope'/, '... names it');

    $r = $ng->post_file('/api/jobs?preset=small&preset=voice', $mp4);
    VconvNginx::is_api_error($r, 400, 'duplicate_option', 'two presets 400');

    $r = $ng->post_file('/api/jobs?preset=fit&crf=20&height=120', $mp4);
    is($r->{status}, 202, 'crf over a target_size preset is an override, '
       . 'not a conflict') or diag($r->{body});
    $ng->wait_job($r->{json}{id}, 60) if $r->{status} == 202;

    $r = $ng->post_file('/api/jobs?preset=voice&height=120', $mp4);
    VconvNginx::is_api_error($r, 400, 'conflicting_options',
                             'an override that does not fit the preset 400');

    $r = $ng->post_file('/api/jobs?preset=/etc/passwd', $mp4);
    VconvNginx::is_api_error($r, 400, 'unknown_preset', 'a path as a name');

    $r = $ng->post_file('/more/jobs?preset=tiny&foo=1', $mp4);
    VconvNginx::is_api_error($r, 400, 'unknown_option',
                             'unknown options still refused with a preset');
}

# --- vconv_presets_only ---------------------------------------------------

{
    my $r = $ng->post_file('/strict/jobs?preset=small&height=64', $mp4);
    VconvNginx::is_api_error($r, 400, 'presets_only',
                             'presets_only: an override is 400');
    like($r->{json}{error}{message}, qr/'height'/, '... naming the option');

    $r = $ng->post_file('/strict/jobs?format=mp4', $mp4);
    VconvNginx::is_api_error($r, 400, 'presets_only',
                             'presets_only: options without a preset 400');

    $r = $ng->post_file('/strict/jobs', $mp4);
    VconvNginx::is_api_error($r, 400, 'presets_only',
                             'presets_only: no preset at all 400');

    $r = $ng->post_multipart('/strict/jobs', file => $mp4,
                             fields_after => [preset => 'small',
                                              height => 64]);
    VconvNginx::is_api_error($r, 400, 'presets_only',
                             'presets_only: a multipart override 400');

    my $p = convert('/strict/jobs?preset=small&name=x.mp4',
                    'presets_only with preset and name');
    is($p->{video}{height}, 96, 'presets_only: the preset as is');
}

my @left = grep { !/^\./ } $ng->store_entries;
ok(1, 'store entries: ' . scalar(@left));
$ng->assert_clean_log;
$ng->stop;

done_testing;


# the line number of the first line of the instance's nginx.conf with $text
sub conf_line {
    my ($ng, $text) = @_;
    open my $fh, '<', $ng->prefix . '/nginx.conf' or return 0;
    while (<$fh>) {
        return $. if index($_, $text) >= 0;
    }
    return 0;
}
