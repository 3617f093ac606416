#!/usr/bin/perl
# Issue 13, the probe engineer's part: format=info (checked field by field
# against ffprobe's own answer on media made to have the properties: HDR
# tags, 10 bits, rotation, languages, a 5.1 layout, a title),
# format=info&wait=1 (the JSON at once, nothing kept), format=sprite with
# output/sprite.vtt (tile count in the JPEG against the VTT's cues and the
# duration, tiles compared by PSNR with the input's frames at their cue
# times), and outputs.zip (Python's zipfile and unzip -t, sizes, CRCs,
# names, HEAD, 409 while not done).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use POSIX qw(ceil);
use Test::More;
use VconvNginx;

my $dir = tempdir('vconv-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $JSON = VconvNginx->json;

sub run_ok {
    my @cmd = @_;
    system(@cmd) == 0 or die "failed: @cmd";
}

sub ffprobe_json {
    my ($file) = @_;
    my $out = `ffprobe -v error -show_format -show_streams -of json '$file'`;
    return $JSON->decode($out);
}

sub dims {
    my ($file) = @_;
    my $o = `ffprobe -v error -select_streams v:0 -show_entries stream=width,height -of csv=p=0:s=x '$file'`;
    chomp $o;
    return split /x/, $o;
}

# HDR-tagged 10-bit H.264, French 5.1 AAC, a title; and a rotated copy
my $hdr = "$dir/hdr.mp4";
run_ok('ffmpeg', '-nostdin', '-v', 'error', '-y',
       '-f', 'lavfi', '-i', 'testsrc2=s=320x240:r=25:d=10',
       '-f', 'lavfi', '-i', 'sine=d=10',
       '-metadata', 'title=My "clip"', '-metadata:s:a:0', 'language=fra',
       '-metadata:s:v:0', 'language=eng',
       '-color_primaries', 'bt2020', '-color_trc', 'smpte2084',
       '-colorspace', 'bt2020nc', '-c:v', 'libx264', '-preset', 'veryfast',
       '-pix_fmt', 'yuv420p10le', '-c:a', 'aac', '-ac', '6', $hdr);
my $rot = "$dir/rot.mov";
run_ok('ffmpeg', '-nostdin', '-v', 'error', '-y', '-i', $hdr, '-c', 'copy',
       '-metadata:s:v:0', 'rotate=90', $rot);
my $clip = VconvNginx::make_media($dir, 'mp4', duration => 10);
my $slow = VconvNginx::make_media($dir, 'slow', duration => 20);
# three pictures, 3 s each: the last one must fill the tiles to the end
my $still = "$dir/still.mp4";
run_ok('ffmpeg', '-nostdin', '-v', 'error', '-y', '-f', 'lavfi', '-i',
       'testsrc2=s=320x240:r=1/3:d=9', '-c:v', 'libx264', '-preset',
       'veryfast', '-pix_fmt', 'yuv420p', $still);

my $ng = VconvNginx->new->start;

sub upload {
    my ($file, $q, $name) = @_;
    my $r = $ng->post_file("/api/jobs?$q", $file, name => $name);
    is($r->{status}, 202, "upload $name ($q) -> 202") or diag($r->{body});
    return $r->{json} ? $r->{json}{id} : 'none';
}

# --- info: against ffprobe ------------------------------------------------

for my $case ([$hdr, 'hdr.mp4'], [$rot, 'rot.mov']) {
    my ($file, $name) = @$case;
    my $id = upload($file, 'format=info', $name);
    my $job = $ng->wait_job($id, 60);
    is($job->{status}, 'done', "info of $name: done");
    my $r = $ng->get("/api/jobs/$id/output");
    is($r->{status}, 200, '... output 200');
    like($r->{headers}{'content-type'} // '', qr{^application/json},
         '... application/json');
    my $got = eval { $JSON->decode($r->{body}) };
    ok($got, '... the output is JSON') or diag($r->{body});
    $got //= {};
    my $want = ffprobe_json($file);

    my ($gf, $wf) = ($got->{format} // {}, $want->{format});
    is($gf->{name}, $wf->{format_name}, '... container');
    ok(abs(($gf->{duration} // 0) - $wf->{duration}) < 0.001, '... duration')
        or diag("got $gf->{duration}, ffprobe $wf->{duration}");
    is($gf->{bit_rate}, $wf->{bit_rate}, '... bit rate');
    is($gf->{size}, -s $file, '... size: the file\'s bytes');
    is($gf->{tags}{title}, 'My "clip"', '... global tag title (quotes kept)');
    is_deeply($gf->{tags}, $wf->{tags} // {}, '... every global tag');

    my @gs = @{ $got->{streams} // [] };
    is(scalar @gs, scalar @{ $want->{streams} }, '... stream count');
    for my $i (0 .. $#{ $want->{streams} }) {
        my ($g, $w) = ($gs[$i] // {}, $want->{streams}[$i]);
        my $t = $w->{codec_type};
        is($g->{codec_type}, $t, "... stream $i type $t");
        for my $k (qw(codec_name profile)) {
            is($g->{$k}, $w->{$k}, "... stream $i $k");
        }
        is($g->{language}, $w->{tags}{language}, "... stream $i language");
        if ($t eq 'video') {
            for my $k (qw(width height display_aspect_ratio avg_frame_rate
                          r_frame_rate pix_fmt color_primaries color_transfer
                          color_space color_range))
            {
                is($g->{$k}, $w->{$k}, "... video $k = " . ($w->{$k} // 'undef'));
            }
            my ($sd) = grep { defined $_->{rotation} } @{ $w->{side_data_list} // [] };
            is($g->{rotation}, $sd ? $sd->{rotation} + 0 : 0,
               '... rotation as ffprobe says it');
            is($g->{bit_depth}, 10, '... bit depth 10');
            is($g->{hdr}, $JSON->true, '... hdr: PQ transfer');
        } elsif ($t eq 'audio') {
            for my $k (qw(sample_rate channels channel_layout sample_fmt)) {
                is($g->{$k}, $w->{$k}, "... audio $k = $w->{$k}");
            }
        }
    }
    if ($name eq 'rot.mov') {
        ok($gs[0]{rotation}, '... the rotated copy says a rotation');
    }
}

# --- info&wait=1: the JSON at once, nothing kept --------------------------

{
    my $before = join ',', @{ $ng->store_entries };
    my $r = $ng->post_file('/api/jobs?format=info&wait=1', $clip,
                           name => 'clip.mp4', max_time => 60);
    is($r->{status}, 200, 'info&wait=1 -> 200');
    like($r->{headers}{'content-type'} // '', qr{^application/json},
         '... application/json');
    my $j = eval { $JSON->decode($r->{body}) } // {};
    is($j->{format}{nb_streams}, 2, '... the probe\'s JSON');
    ok(abs(($j->{format}{duration} // 0) - 10) < 0.1, '... duration 10 s');
    my $after;
    VconvNginx::poll(10, sub {
        $after = join ',', @{ $ng->store_entries };
        $after eq $before;
    });
    is($after, $before, '... and no job folder is left');

    $r = $ng->post_file('/api/jobs?format=info&width=100', $clip,
                        name => 'clip.mp4');
    VconvNginx::is_api_error($r, 400, 'conflicting_options',
                             'info with width -> 400 conflicting_options');
    $r = $ng->post_file('/api/jobs?format=mp4&sprite.columns=3', $clip,
                        name => 'clip.mp4');
    VconvNginx::is_api_error($r, 400, 'conflicting_options',
                             'sprite.columns with mp4 -> 400');
    $r = $ng->post_file('/api/jobs?format=sprite&sprite.interval=0.01', $clip,
                        name => 'clip.mp4');
    VconvNginx::is_api_error($r, 400, undef, 'sprite.interval=0.01 -> 400');
}

# --- sprite + sprite.vtt ---------------------------------------------------

sub vtt_cues {
    my ($text) = @_;
    my @cues;
    my @blocks = split /\n\n+/, $text;
    my $head = shift @blocks;
    return undef unless defined $head && $head =~ /^WEBVTT/;
    for my $b (@blocks) {
        my ($times, $payload) = split /\n/, $b;
        my ($a, $z) = $times =~
            /^(\d\d:\d\d:\d\d\.\d\d\d) --> (\d\d:\d\d:\d\d\.\d\d\d)$/ or return undef;
        my $sec = sub { my ($h, $m, $s) = split /:/, $_[0]; $h * 3600 + $m * 60 + $s };
        my ($url, $x, $y, $w, $h) = $payload =~ /^(.*)#xywh=(\d+),(\d+),(\d+),(\d+)$/
            or return undef;
        push @cues, { from => $sec->($a), to => $sec->($z), url => $url,
                      x => $x, y => $y, w => $w, h => $h };
    }
    return \@cues;
}

sub psnr {
    my ($a, $b) = @_;
    my $o = `ffmpeg -nostdin -v info -i '$a' -i '$b' -lavfi psnr -f null - 2>&1`;
    my ($v) = $o =~ /average:(\S+)/;
    return $v eq 'inf' ? 99 : $v;
}

for my $case (['sprite.interval=2&sprite.columns=3', 2, 3],
              ['', 1, 10])
{
    my ($opt, $iv, $cols) = @$case;
    my $q = 'format=sprite' . ($opt ? "&$opt" : '');
    my $id = upload($clip, $q, 'clip.mp4');
    my $job = $ng->wait_job($id, 120);
    is($job->{status}, 'done', "$q: done") or diag($JSON->encode($job));
    my $jpg = "$dir/sprite-$iv.jpg";
    my $r = $ng->download($id, $jpg);
    is($r->{status}, 200, '... output 200');
    like($r->{headers}{'content-type'} // '', qr{^image/jpeg}, '... image/jpeg');
    $r = $ng->get("/api/jobs/$id/output/sprite", output => "$jpg.2");
    is($r->{status}, 200, '... output/sprite 200 (the VTT\'s URL)');
    is(-s "$jpg.2", -s $jpg, '... the same picture');
    $r = $ng->get("/api/jobs/$id/output/sprite.vtt");
    is($r->{status}, 200, '... output/sprite.vtt 200');
    like($r->{headers}{'content-type'} // '', qr{^text/vtt}, '... text/vtt');
    my $cues = vtt_cues($r->{body});
    ok($cues, '... a WebVTT of xywh cues') or diag($r->{body});
    $cues //= [];

    my $n = ceil(10 / $iv);
    is(scalar @$cues, $n, "... $n cues: 10 s every $iv s");
    my ($tw, $th) = (160, 120);
    my ($W, $H) = dims($jpg);
    my $rows = ceil($n / $cols);
    is($W, $cols * $tw, "... JPEG width: $cols tiles of $tw");
    is($H, $rows * $th, "... JPEG height: $rows rows of $th");
    ok($n <= ($W / $tw) * ($H / $th) && $n > ($W / $tw) * ($H / $th - 1),
       '... the grid holds the cues, its last row used');
    my $bad = 0;
    for my $i (0 .. $#$cues) {
        my $c = $cues->[$i];
        my $to = $i == $#$cues ? 10 : ($i + 1) * $iv;
        $bad++, diag("cue $i: " . $JSON->encode($c))
            unless abs($c->{from} - $i * $iv) < 0.001
                && abs($c->{to} - $to) < 0.001
                && $c->{url} eq 'sprite'
                && $c->{x} == ($i % $cols) * $tw
                && $c->{y} == int($i / $cols) * $th
                && $c->{w} == $tw && $c->{h} == $th;
    }
    is($bad, 0, '... every cue: its time range, its tile, url "sprite"');

    # the tiles show the input at their cue's start
    for my $i (0, $n - 1) {
        my $c = $cues->[$i] or next;
        run_ok('ffmpeg', '-nostdin', '-v', 'error', '-y', '-i', $jpg, '-vf',
               "crop=$c->{w}:$c->{h}:$c->{x}:$c->{y}", '-pix_fmt', 'yuv420p',
               "$dir/tile.y4m");
        run_ok('ffmpeg', '-nostdin', '-v', 'error', '-y', '-ss', $c->{from},
               '-i', $clip, '-frames:v', '1', '-vf',
               "scale=$tw:$th,format=yuv420p", "$dir/ref.y4m");
        run_ok('ffmpeg', '-nostdin', '-v', 'error', '-y', '-ss',
               $c->{from} + $iv / 2, '-i', $clip, '-frames:v', '1', '-vf',
               "scale=$tw:$th,format=yuv420p", "$dir/other.y4m");
        my ($p, $q2) = (psnr("$dir/tile.y4m", "$dir/ref.y4m"),
                        psnr("$dir/tile.y4m", "$dir/other.y4m"));
        ok($p > 25 && $p > $q2 + 3,
           "... tile $i is the frame at $c->{from} s (PSNR $p dB; "
           . "half an interval later $q2 dB)");
    }
    if ($iv == 2) {
        $r = $ng->get("/api/jobs/$id/outputs.zip", output => "$dir/s.zip");
        is($r->{status}, 200, 'outputs.zip of the sprite job -> 200');
        my $py = `python3 -c '
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
print(z.testzip())
for i in z.infolist():
    print(i.filename, i.file_size, i.compress_type, "%08x" % i.CRC)
' '$dir/s.zip' 2>&1`;
        my @l = split /\n/, $py;
        is(shift @l, 'None', '... zipfile testzip(): every CRC right') or diag($py);
        my $vtt = $ng->get("/api/jobs/$id/output/sprite.vtt")->{body};
        is_deeply(\@l, ["clip.sprite.jpg ${\(-s $jpg)} 0 " . crc($jpg),
                        "clip.sprite.vtt ${\length $vtt} 0 " . crc_str($vtt)],
                  '... names from the input\'s, sizes, stored, CRCs')
            or diag($py);
    }
}

# a picture stands until the next: the last one's tiles reach the end
{
    my $id = upload($still, 'format=sprite', 'still.mp4');
    is($ng->wait_job($id, 60)->{status}, 'done', 'sprite of 3 pictures of 3 s');
    my $cues = vtt_cues($ng->get("/api/jobs/$id/output/sprite.vtt")->{body})
               // [];
    is(scalar @$cues, 9, '... 9 cues of 1 s: the last picture fills 6-9 s');
    is($cues->[-1]{to}, 9, '... the last cue ends at 9 s') if @$cues;
    my $jpg = "$dir/still.jpg";
    $ng->download($id, $jpg);
    my $c = $cues->[8];
    if ($c) {
        run_ok('ffmpeg', '-nostdin', '-v', 'error', '-y', '-i', $jpg, '-vf',
               "crop=$c->{w}:$c->{h}:$c->{x}:$c->{y}", '-pix_fmt', 'yuv420p',
               "$dir/tile.y4m");
        run_ok('ffmpeg', '-nostdin', '-v', 'error', '-y', '-ss', 6,
               '-i', $still, '-frames:v', '1', '-vf',
               'scale=160:120,format=yuv420p', "$dir/ref.y4m");
        my $p = psnr("$dir/tile.y4m", "$dir/ref.y4m");
        ok($p > 25, "... tile 8 shows the third picture (PSNR $p dB)");
    }
}

# HDR in: tiles tone mapped to SDR as the jpg output is
{
    my $id = upload($hdr, 'format=sprite&sprite.interval=5', 'hdr.mp4');
    is($ng->wait_job($id, 60)->{status}, 'done', 'sprite of a PQ input');
    my $jid = upload($hdr, 'format=jpg&width=160&start=0', 'hdr.mp4');
    is($ng->wait_job($jid, 60)->{status}, 'done', '... and its jpg at 0 s');
    $ng->download($id, "$dir/hdr-sprite.jpg");
    $ng->download($jid, "$dir/hdr-0.jpg");
    run_ok('ffmpeg', '-nostdin', '-v', 'error', '-y', '-i',
           "$dir/hdr-sprite.jpg", '-vf', 'crop=160:120:0:0', '-pix_fmt',
           'yuv420p', "$dir/tile.y4m");
    run_ok('ffmpeg', '-nostdin', '-v', 'error', '-y', '-i', "$dir/hdr-0.jpg",
           '-pix_fmt', 'yuv420p', "$dir/ref.y4m");
    my $p = psnr("$dir/tile.y4m", "$dir/ref.y4m");
    ok($p > 30, "... tile 0 looks like the tone mapped jpg (PSNR $p dB)");
}

# an input that does not say its duration (MPEG-TS through a pipe, the
# core alone): the grid is made for the most tiles and cut to those used
{
    my $ts = "$dir/clip.ts";
    run_ok('ffmpeg', '-nostdin', '-v', 'error', '-y', '-f', 'lavfi', '-i',
           'testsrc2=s=320x240:r=25:d=7', '-c:v', 'libx264', '-preset',
           'veryfast', '-f', 'mpegts', $ts);
    my $build = $ENV{VCONV_BUILD} // "$VconvNginx::ROOT/build";
    my $out = "$dir/ts.jpg";
    my $j = `cat '$ts' | '$build/vconv-cli' /dev/stdin '$out' format=sprite sprite.interval=1 2>/dev/null`;
    my $r = eval { $JSON->decode($j) } // {};
    is($r->{input}{duration}, -1, 'MPEG-TS from a pipe: no duration known');
    is($r->{sprite}{tiles}, 7, '... 7 tiles of 1 s');
    my ($w, $h) = dims($out);
    is("${w}x$h", '1120x120', '... the picture holds just those: 7 x 160, one row');
    my $cues = vtt_cues(do { local $/; open my $f, '<', "$out.vtt"; <$f> // '' }) // [];
    is(scalar @$cues, 7, '... and the CLI wrote 7 cues beside it');
}

sub crc_str {
    my ($s) = @_;
    require Compress::Zlib;
    return sprintf '%08x', Compress::Zlib::crc32($s);
}

sub crc {
    open my $fh, '<:raw', $_[0] or die;
    local $/;
    return crc_str(<$fh>);
}

# --- outputs.zip -----------------------------------------------------------

{
    my $id = upload($slow, 'format=mp4', 'Holiday clip.final.mov');
    my $r = $ng->get("/api/jobs/$id/outputs.zip");
    my $job = $ng->get("/api/jobs/$id")->{json} // {};
    if (($job->{status} // '') ne 'done') {
        VconvNginx::is_api_error($r, 409, 'not_ready', 'outputs.zip while running -> 409');
    } else {
        fail('the slow job was done already');
    }
    $job = $ng->wait_job($id, 180);
    is($job->{status}, 'done', 'mp4 job done');
    my $zip = "$dir/out.zip";
    $r = $ng->get("/api/jobs/$id/outputs.zip", output => $zip);
    is($r->{status}, 200, 'outputs.zip -> 200');
    like($r->{headers}{'content-type'} // '', qr{^application/zip}, '... application/zip');
    is($r->{headers}{'content-length'}, -s $zip, '... Content-Length exact');
    like($r->{headers}{'content-disposition'} // '',
         qr/attachment;.*filename="Holiday clip\.final\.zip"/,
         '... Content-Disposition named after the input');
    my $out = "$dir/out.mp4";
    $ng->download($id, $out);
    my $py = `python3 -c '
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
print(z.testzip())
print(" ".join("%s:%d:%d" % (i.filename, i.file_size, i.compress_type) for i in z.infolist()))
open(sys.argv[2], "wb").write(z.read(z.infolist()[0]))
' '$zip' '$dir/unzipped.mp4' 2>&1`;
    my ($t, $list) = split /\n/, $py;
    is($t, 'None', '... testzip() finds no bad CRC') or diag($py);
    is($list, "Holiday clip.final.mp4:${\(-s $out)}:0",
       '... one stored entry, named from the input, the output\'s size');
    is(crc("$dir/unzipped.mp4"), crc($out), '... its bytes are the output\'s');
    my $u = `unzip -t '$zip' 2>&1`;
    is($?, 0, '... unzip -t: no errors') or diag($u);

    my $h = $ng->head("/api/jobs/$id/outputs.zip");
    is($h->{status}, 200, 'HEAD outputs.zip -> 200');
    is($h->{headers}{'content-length'}, -s $zip, '... the same Content-Length');

    $r = $ng->get("/api/jobs/$id/output/sprite.vtt");
    is($r->{status}, 404, 'output/sprite.vtt of an mp4 job -> 404');

    is($ng->delete($id)->{status}, 204, 'DELETE');
    $r = $ng->get("/api/jobs/$id/outputs.zip");
    is($r->{status}, 404, 'outputs.zip after DELETE -> 404');
}

$ng->stop;
$ng->assert_clean_log;

done_testing();
